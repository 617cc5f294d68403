"""Tools around ONNX policies in closed loop: swap a policy into a plan, compare it with its expert, judge a quantized model.

Modules: :mod:`~aegis.runs.policy_swap` (a policy node in the place of the node feeding the
filter), :mod:`~aegis.runs.policy_compare` (``aegis sim --policy``: policy and expert side by
side), :mod:`~aegis.policy_tools.rollouts` (one plan per episode for campaigns),
:mod:`~aegis.policy_tools.judge` (``aegis model judge``), :mod:`~aegis.policy_tools.cli` (the
``aegis model`` subcommands). Built on :mod:`aegis.inference` and :mod:`aegis.runs`.
"""
