"""What a SavedModel would run, checked before it is loaded.

A SavedModel is a program: loading one and calling its signatures runs whatever ops its graph
holds, including ops that read or write files (`ReadFile`, `WriteFile`, `SaveV2`) or call back
into Python (`PyFunc`). TensorFlow loads anything (its security notes say to treat a SavedModel
from a stranger like code from a stranger). `electra-tf predict` and `load_predictor` check the
graph first: every op must be one an `electra-tf export` can contain (`ALLOWED_OPS`, kept
complete by tests/test_export.py, which exports every architecture, head and precision), and the
checkpoint ops appear only in the two functions TensorFlow writes to save and restore the
variables, which nothing else may call. A model that fails is refused unless the user says they
trust it (`--trust-saved-model`).
"""

from __future__ import annotations

import os

from electra_tf.errors import CheckpointError

# The ops our exports contain (tests/saved_model_variants.py prints them), and pure compute ops
# our layers may come to use (other activations, poolings): none reads or writes a file, keeps
# hidden state or calls Python.
ALLOWED_OPS = frozenset({
    "Abs", "Acos", "Add", "AddN", "AddV2", "All", "Any", "ArgMax", "Asin", "Assert",
    "AssignVariableOp", "Atan", "BatchMatMulV2", "BatchMatMulV3", "BiasAdd", "BiasAddGrad",
    "Bitcast", "BroadcastArgs", "BroadcastTo", "Case", "Cast", "Ceil", "CheckNumerics",
    "ClipByValue", "ConcatV2", "Const", "Conv2D", "Cos", "Cumprod", "Cumsum",
    "DepthwiseConv2dNative", "DisableCopyOnRead", "Div", "DivNoNan", "Einsum", "Elu",
    "EnsureShape", "Equal", "Erf", "Erfc", "Exp", "ExpandDims", "Expm1", "FastBertNormalize",
    "FastWordpieceTokenizeWithOffsets", "Fill", "Floor", "FloorDiv", "FloorMod", "GatherNd",
    "GatherV2", "Greater", "GreaterEqual", "Identity", "IdentityN", "If", "IsFinite", "IsNan",
    "L2Loss", "LeakyRelu", "Less", "LessEqual", "Log", "Log1p", "LogSoftmax", "LogicalAnd",
    "LogicalNot", "LogicalOr", "MatMul", "Max", "Maximum", "Mean", "Min", "Minimum", "Mul", "Neg",
    "NoOp", "NotEqual", "OneHot", "OnesLike", "Pack", "Pad", "PadV2", "PartitionedCall",
    "Placeholder", "Pow", "Prod", "RaggedGather", "RaggedRange", "RaggedTensorToTensor", "Range",
    "Rank", "ReadVariableOp", "RealDiv", "Reciprocal", "RegexReplace", "Relu", "Relu6", "Reshape",
    "ResourceGather", "ReverseV2", "Round", "Rsqrt", "SegmentSum", "Select", "SelectV2", "Selu",
    "Shape", "ShapeN", "Sigmoid", "Sign", "Sin", "Size", "Slice", "Softmax", "Softplus",
    "Softsign", "Split", "SplitV", "Sqrt", "Square", "SquaredDifference", "Squeeze",
    "StatefulPartitionedCall", "StatelessCase", "StatelessIf", "StatelessWhile",
    "StaticRegexFullMatch", "StaticRegexReplace", "StopGradient", "StridedSlice", "StringJoin",
    "StringLength", "StringSplitV2", "Sub", "Substr", "Sum", "Tanh", "Tile", "TopKV2",
    "Transpose", "UnicodeTranscode", "Unpack", "UnsortedSegmentSum", "VarHandleOp",
    "VarIsInitializedOp", "Where", "While", "ZerosLike",
    # A tagger's serving graph: words with offsets, greedy windows (a scan over in-memory
    # tensor lists), entity spans by segment reductions.
    "DenseBincount", "LowerBound", "RegexSplitWithOffsets", "TensorListFromTensor",
    "TensorListGetItem", "TensorListReserve", "TensorListSetItem", "TensorListStack",
    "UnicodeDecode", "UnicodeDecodeWithOffsets", "UnicodeEncode", "UnsortedSegmentJoin",
    "UnsortedSegmentMax", "UnsortedSegmentMin",
    # A reader's: windows over the context and the max-context rule.
    "ScatterNd",
})
# Reading and writing the variables' checkpoint: only inside TensorFlow's own save/restore
# functions.
CHECKPOINT_OPS = frozenset({"MergeV2Checkpoints", "RestoreV2", "SaveV2", "ShardedFilename"})
CHECKPOINT_FUNCTIONS = ("__inference__traced_save_", "__inference__traced_restore_")


def _read_saved_model(export_dir: str):
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    path = os.path.join(export_dir, "saved_model.pb")
    try:
        with open(path, "rb") as f:
            saved_model.ParseFromString(f.read())
    except Exception as err:  # noqa: BLE001 - any parse failure means the same to the user
        raise CheckpointError(f"{path} cannot be read as a SavedModel ({type(err).__name__}); "
                              "export the model again.") from None
    return saved_model


def _called_functions(nodes) -> set[str]:
    """Names of the functions the nodes call (`f`, `then_branch`, `body`, ... attributes)."""
    called = set()
    for node in nodes:
        for value in node.attr.values():
            if value.HasField("func"):
                called.add(value.func.name)
            called.update(func.name for func in value.list.func)
    return called


def saved_model_ops(export_dir: str) -> set[str]:
    """Every op type in the SavedModel's graphs and functions."""
    ops = set()
    for meta_graph in _read_saved_model(export_dir).meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


def unexpected_ops(export_dir: str) -> list[str]:
    """The ops of the SavedModel an `electra-tf export` never contains, sorted; a checkpoint op
    outside the save/restore functions (or such a function called by another) counts too."""
    found = set()
    for meta_graph in _read_saved_model(export_dir).meta_graphs:
        found.update(node.op for node in meta_graph.graph_def.node
                     if node.op not in ALLOWED_OPS)
        functions = meta_graph.graph_def.library.function
        checkpointing = {f.signature.name for f in functions
                         if f.signature.name.startswith(CHECKPOINT_FUNCTIONS)}
        for function in functions:
            allowed = ALLOWED_OPS
            if function.signature.name in checkpointing:
                allowed = ALLOWED_OPS | CHECKPOINT_OPS
            found.update(node.op for node in function.node_def if node.op not in allowed)
            if _called_functions(function.node_def) & checkpointing:
                found.add("a call of the checkpoint functions")
        for saved_object in meta_graph.object_graph_def.nodes:
            kind = saved_object.WhichOneof("kind")
            names = (set(saved_object.function.concrete_functions) if kind == "function" else
                     {saved_object.bare_concrete_function.concrete_function_name}
                     if kind == "bare_concrete_function" else set())
            if names & checkpointing:
                found.add("a call of the checkpoint functions")
    return sorted(found)


def check_saved_model_ops(export_dir: str, trust: bool = False) -> None:
    """Refuses a SavedModel holding ops our exports never contain, unless `trust`.

    Raises:
        CheckpointError: one line naming the ops and the way to load it anyway.
    """
    if trust:
        return
    unexpected = unexpected_ops(export_dir)
    if unexpected:
        shown = ", ".join(unexpected[:8]) + (", ..." if len(unexpected) > 8 else "")
        raise CheckpointError(
            f"{export_dir} holds ops an electra-tf export never contains ({shown}); a "
            "SavedModel is a program, and these could read or write files or run Python. Load "
            "it only if you trust where it came from: pass --trust-saved-model "
            "(load_predictor(..., trust_saved_model=True)).")
