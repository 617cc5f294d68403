"""Imitation of the MPC experts: demonstrations in randomized sim, DAgger, Lipschitz-bounded behaviour cloning, ONNX export.

`aegis train CONFIG --out models/NAME.onnx --seed N` runs the whole pipeline (:mod:`.pipeline`):

- :mod:`.expert`: what a hw_config's expert is (its node, robot kind, rate, action scales) and
  how it labels a state (the real expert node's ``step``);
- :mod:`.scenarios`: randomized training scenarios (references, start states, the shipped ones);
- :mod:`.rollout`: one lockstep episode, the states its controller saw, labelled by the expert;
- :mod:`.dataset`: observation/action arrays, aggregation, normalisation statistics;
- :mod:`.lipschitz`: certified (product of layer norms) and empirical Lipschitz bounds (numpy);
- :mod:`.bc`: behaviour cloning of an MLP under a per-layer spectral-norm bound (torch);
- :mod:`.export`: the ONNX graph and its contract.

torch is the optional ``[train]`` extra: only :mod:`.bc` imports it, lazily; the rest needs none.
"""
