"""ONNX policies: the contract a model carries, the checks at load, and the runtime that runs it in physical units.

Modules: :mod:`~aegis.inference.contract` (the PolicyContract, in ONNX metadata or a YAML mapping
file), :mod:`~aegis.inference.checks` (contract vs graph and deployment), :mod:`~aegis.inference.stamping` (a contract into a model's metadata),
:mod:`~aegis.inference.physical_graph` (the contract moved into the graph: physical observation in,
physical clipped action out; with :mod:`~aegis.inference.graph_edit` and
:mod:`~aegis.inference.action_limits`), :mod:`~aegis.inference.providers`
(execution providers and their fallback), :mod:`~aegis.inference.runtime` (PolicyRuntime, which runs
the physical graph; :mod:`~aegis.inference.runtime_setup` prepares it),
:mod:`~aegis.inference.inspection` (``aegis model inspect``), :mod:`~aegis.inference.doctor`
(``aegis doctor``), :mod:`~aegis.inference.mlp` (small MLP graphs, numpy forward) and
:mod:`~aegis.bench.inference` (``aegis bench policy``). Importing this package imports neither
onnx nor onnxruntime; the modules that need them do.
"""

from aegis.inference.checks import (
    ContractMismatch,
    DeploymentExpectation,
    check_contract,
    check_deployment,
    check_graph,
    expectation_from_config,
)
from aegis.inference.contract import (
    ActionField,
    ContractError,
    Normalization,
    ObservationField,
    PolicyContract,
    Producer,
    load_contract,
    mapping_path_for,
    read_contract,
    read_mapping,
    write_mapping,
)
from aegis.inference.stamping import write_contract

__all__ = [
    "ActionField",
    "ContractError",
    "ContractMismatch",
    "DeploymentExpectation",
    "Normalization",
    "ObservationField",
    "PolicyContract",
    "Producer",
    "check_contract",
    "check_deployment",
    "check_graph",
    "expectation_from_config",
    "load_contract",
    "mapping_path_for",
    "read_contract",
    "read_mapping",
    "write_contract",
    "write_mapping",
]
