"""What the compiled loops will do on a GPU, read on any machine from TensorFlow's own GPU kernel registry.

    python -m benchmarks.gpu_audit                                # every shipped config, 1 and 2 replicas
    python -m benchmarks.gpu_audit --configs=cifar10_airbench --replicas=2 --precisions=mixed_float16

TensorFlow's Linux wheel registers its CUDA kernels even where no GPU exists, so the training and evaluation
loops are traced exactly as the trainer builds them (`training.setup`, `training.loops`, the input pipeline or
the device-resident training set) and every op is looked up as if each replica's device were a GPU:

- **no GPU kernel**: an op outside XLA with no GPU kernel for its dtypes, or a variable whose dtype no GPU
  `VarHandleOp` holds. Soft placement moves these to the host: a copy each way, and on the host every step.
- **no XLA kernel**: an op inside a `jit_compile` function without an `XLA_GPU_JIT` kernel (compilation fails).
- **refused collective**: a cross-replica reduction of a dtype GPU collectives refuse (`Collective all-reduce
  does not support datatype DT_INT32 on DEVICE_GPU`, tensorflow#56184; bfloat16 likewise). MirroredStrategy
  over NCCL reduces some of them another way, MultiWorkerMirroredStrategy does not: both are refused here.
- **host copies**: an edge from a GPU kernel's output in device memory into an input the consumer's GPU kernel
  takes in host memory (a `Reshape`'s shape, a `Slice`'s begin, a `tf.cond` predicate, a stateless seed): the
  stream waits for a device-to-host copy. Counted per training step and replica, and apart for the ops in the
  step's conditional branches (the loss scale's finite-gradient branch runs every step, the epoch-crossing one
  once an epoch). Shape arithmetic is not counted: shapes here are static, and Grappler folds it.

The datasets are replaced by synthetic images of the config's size (the step's ops do not depend on where the
pixels come from: tf.data hands the step the same tensors) and the batch by a small one (shapes, not ops,
change with it). What this cannot see: cuDNN's choice of algorithms, XLA's own host transfers, NCCL itself.
"""

import argparse
import collections
import contextlib
import dataclasses
import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # a registry miss is logged as a warning by TensorFlow

import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import kernel_def_pb2, node_def_pb2  # noqa: E402
from tensorflow.python.framework import kernels, op_def_registry  # noqa: E402
from tensorflow.python.util import _pywrap_kernel_registry  # noqa: E402

import input_pipeline  # noqa: E402
from training import loops, setup  # noqa: E402

SHIPPED = ("quickstart", "quickstart_race", "cifar10_airbench", "cifar10_resnet9", "imagenette", "imagenet_resnet50")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
REFUSED_COLLECTIVE_DTYPES = (tf.int32, tf.bfloat16)
PER_REPLICA_BATCH = 4
CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
BRANCH_OPS = ("If", "StatelessIf", "Case", "StatelessCase")
LOOP_OPS = ("While", "StatelessWhile")
NO_MEMORY = (tf.resource.as_datatype_enum, tf.variant.as_datatype_enum)  # handles live on the host by design


@dataclasses.dataclass
class Findings:
    """What one traced config would do on a GPU; each list holds (what, where) descriptions."""

    name: str
    no_gpu_kernel: list = dataclasses.field(default_factory=list)
    no_xla_kernel: list = dataclasses.field(default_factory=list)
    refused_collectives: list = dataclasses.field(default_factory=list)
    host_copies: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # (edge, where)
    examples: dict = dataclasses.field(default_factory=dict)  # a finding's description -> one node's name
    replicas: int = 1

    def copies_per_step(self, where="train step"):
        """Device-to-host copies each replica makes per execution of `where` ("a branch of train step": in the
        branches of its conditionals, which may run every step, as the loss scale's finite-gradient branch
        does, or rarely, as the epoch-crossing one)."""
        return sum(n for (_, place), n in self.host_copies.items() if place == where) / self.replicas


class Registry:
    """TensorFlow's registered kernels, looked up for a node as if it were placed on a GPU."""

    def __init__(self):
        tf.function(lambda x: x + 1, jit_compile=True)(tf.constant(1.0))  # registers the XLA_*_JIT kernels
        self.gpu = collections.defaultdict(list)
        for kernel in kernels.get_all_registered_kernels().kernel:
            if kernel.device_type in ("GPU", "DEFAULT") and not kernel.label:
                self.gpu[kernel.op].append(kernel)

    def gpu_kernel(self, node):
        """The GPU `KernelDef` TensorFlow would run `node` with, or None."""
        attrs = _attrs_with_defaults(node)
        for kernel in sorted(self.gpu[node.op], key=lambda k: k.device_type != "GPU"):
            if all(_allowed(attrs.get(c.name), c.allowed_values.list.type) for c in kernel.constraint):
                return kernel
        return None

    @staticmethod
    def has_xla_kernel(node):
        placed = node_def_pb2.NodeDef()
        placed.CopyFrom(node)
        placed.device = "/device:XLA_GPU_JIT:0"
        return bool(_pywrap_kernel_registry.TryFindKernelClass(placed.SerializeToString()))


def _allowed(value, allowed):
    if value is None:
        return False
    types = list(value.list.type) if value.HasField("list") else [value.type]
    return all(t in allowed for t in types)


def _attrs_with_defaults(node):
    attrs = dict(node.attr)
    for attr in op_def_registry.get(node.op).attr:
        if attr.name not in attrs and attr.HasField("default_value"):
            attrs[attr.name] = attr.default_value
    return attrs


def _flat_args(node, which):
    """[(arg name, dtype enum)] of `node`'s inputs or outputs, one per flat position, from its OpDef."""
    attrs = _attrs_with_defaults(node)
    flat = []
    for arg in getattr(op_def_registry.get(node.op), which):
        if arg.type_list_attr:
            types = list(attrs[arg.type_list_attr].list.type)
        else:
            count = attrs[arg.number_attr].i if arg.number_attr else 1
            types = [arg.type or attrs[arg.type_attr].type] * count
        flat += [(arg.name, t) for t in types]
    return flat


def _called_functions(node):
    names = []
    for value in node.attr.values():
        if value.HasField("func"):
            names.append(value.func.name)
        names += [f.name for f in value.list.func]
    return names


class _Walk:
    """One pass over a traced loop and the functions it calls, filling a `Findings`."""

    def __init__(self, registry, library, findings):
        self.registry, self.library, self.findings = registry, library, findings

    def function(self, nodes, where, in_xla):
        """Audits `nodes` (a graph's or a function's), which run once per `where` ("train call", "eval step",
        ...), inside an XLA cluster or not; recurses into the functions they call."""
        by_name = {node.name: node for node in nodes}
        folded = _folded(nodes)
        memory = {}  # node name -> its GPU KernelDef
        for node in nodes:
            if _is_input_pipeline(node.op) or node.op in ("NoOp", "Placeholder") or node.name in folded:
                continue
            called = _called_functions(node)
            xla = (
                in_xla
                or node.attr["_XlaMustCompile"].b
                or any(self.library[f].attr["_XlaMustCompile"].b for f in called if f in self.library)
            )
            structural = node.op in CALL_OPS + BRANCH_OPS + LOOP_OPS
            if in_xla and not structural and not self.registry.has_xla_kernel(node):
                self.findings.no_xla_kernel.append((_describe(node), where))
                self.findings.examples.setdefault(_describe(node), node.name)
            inner = where.replace("call", "step") if node.op in LOOP_OPS else where
            inner = "a branch of " + inner if node.op in BRANCH_OPS and not xla else inner
            for name in called:
                if name in self.library:
                    self.function(self.library[name].node_def, inner, xla)
            if node.op in BRANCH_OPS and not in_xla:  # lowered to Switch, which takes its predicate in host memory
                predicate = op_def_registry.get(node.op).input_arg[0].name
                self._host_inputs(
                    node, kernel_def_pb2.KernelDef(host_memory_arg=[predicate]), by_name, memory, where, folded
                )
            if in_xla or called:
                continue
            kernel = self.registry.gpu_kernel(node)
            if kernel is None:
                self.findings.no_gpu_kernel.append((_describe(node), where))
                self.findings.examples.setdefault(_describe(node), node.name)
                continue
            memory[node.name] = kernel
            self._host_inputs(node, kernel, by_name, memory, where, folded)

    def _host_inputs(self, node, kernel, by_name, memory, where, folded):
        host_args = set(kernel.host_memory_arg)
        inputs = [i for i in node.input if not i.startswith("^")]
        for (arg, dtype), source in zip(_flat_args(node, "input_arg"), inputs):
            if arg not in host_args or dtype in NO_MEMORY:
                continue
            producer_name, _, output = source.partition(":")
            producer = by_name.get(producer_name)
            if producer is None or producer.op == "Placeholder" or producer_name in folded:
                continue  # a function argument (its producer is in the caller), or a constant Grappler folds
            if _device_output(producer, output, memory.get(producer_name), self.library):
                edge = f"{_describe(producer)} -> {node.op}.{arg}"
                self.findings.host_copies[(edge, where)] += 1
                self.findings.examples.setdefault(edge, node.name)


def _folded(nodes):
    """The names of the nodes Grappler's constant folding removes before the graph runs: constants, shapes
    (every shape in these loops is static: fixed batches), and stateless ops of folded inputs only."""
    folded = set()
    for node in nodes:  # a function's nodes come in topological order
        inputs = [i.lstrip("^").split(":")[0] for i in node.input]
        if node.op in ("Const", "Shape", "ShapeN", "Size", "Rank") or (
            inputs
            and not op_def_registry.get(node.op).is_stateful
            and not _called_functions(node)
            and all(i in folded for i in inputs)
        ):
            folded.add(node.name)
    return folded


def _device_output(producer, output, kernel, library):
    """Whether `producer`'s output named `output` ("arg:index" or "index") is in device memory on a GPU."""
    if producer.op in CALL_OPS:
        return any(library[f].attr["_XlaMustCompile"].b for f in _called_functions(producer) if f in library)
    if kernel is None:
        return False  # on the host already (no GPU kernel), or a branch whose outputs are not followed
    arg = output.split(":")[0] if output and not output.isdigit() else None
    if arg is None:
        args = _flat_args(producer, "output_arg")
        arg = args[int(output or 0)][0]
    return arg not in kernel.host_memory_arg


def _is_input_pipeline(op):
    return any(word in op for word in ("Iterator", "Dataset", "Optional"))


def _describe(node):
    dtypes = sorted({tf.dtypes.as_dtype(v.type).name for k, v in node.attr.items() if v.type and not k.startswith("_")})
    return f"{node.op}[{','.join(dtypes)}]" if dtypes else node.op


@contextlib.contextmanager
def recording_reductions(findings):
    """Records every cross-replica reduction's dtypes while the loops are traced."""
    extended = tf.distribute.StrategyExtended
    originals = {name: getattr(extended, name) for name in ("reduce_to", "batch_reduce_to")}

    def recorded(name):
        def reduce(self, reduce_op, value, *args, **kwargs):
            pairs = value if name == "batch_reduce_to" else [(value, None)]
            for reduced, _ in pairs:
                dtypes = {tensor.dtype for tensor in tf.nest.flatten(reduced, expand_composites=True)}  # replicas'
                for dtype in dtypes & set(REFUSED_COLLECTIVE_DTYPES):
                    findings.refused_collectives.append((f"{name} of {dtype.name}", "train step"))
            return originals[name](self, reduce_op, value, *args, **kwargs)

        return reduce

    for name in originals:
        setattr(extended, name, recorded(name))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(extended, name, original)


def audit_config(config, strategy, registry=None, name=""):
    """The `Findings` of `config`'s training and evaluation loops on `strategy`, traced as the trainer builds
    them, with synthetic data of the config's image size and a batch of PER_REPLICA_BATCH per replica."""
    registry = registry or Registry()
    replicas = strategy.num_replicas_in_sync
    config = dataclasses.replace(
        config,
        dataset="synthetic",
        image_size=config.image_size or (32, 32),
        input_path="memory",
        holdout=0,
        eval_split="",
        batch_size=PER_REPLICA_BATCH * replicas,
        lr_reference_batch=PER_REPLICA_BATCH * replicas,
        jit_compile=not config.sync_batch_norm if config.jit_compile is None else config.jit_compile,  # a GPU's auto
    )
    findings = Findings(name or config.model, replicas=replicas)
    prepared = setup.start(config, strategy)
    strategy = prepared.strategy
    run = setup.build(config, prepared)
    with strategy.scope():
        batches_consumed = tf.Variable(0, dtype=tf.int64, trainable=False, name="batches_consumed")
    resident, train_input = setup.training_input(config, strategy, run.data, batches_consumed)
    with recording_reductions(findings):
        made = loops.make_loops(run, resident)
        train = made.train.get_concrete_function(train_input, tf.constant(2))
    eval_data, eval_steps = input_pipeline.eval_dataset(strategy, run.data, config)
    evaluations = [made.eval] + ([made.eval_plain] if made.eval_plain else [])
    evaluate = [loop.get_concrete_function(iter(eval_data), tf.constant(eval_steps)) for loop in evaluations]
    variables = run.model.weights + run.optimizer.variables + [batches_consumed]
    variables += [resident.images, resident.labels, resident.order] if resident else []
    variables += [resident.first_flips] if resident and resident.first_flips is not None else []
    variables += run.lookahead.variables if run.lookahead else []
    audit_variables(variables, findings, registry)
    audit_function(train, "train call", findings, registry)
    for function in evaluate:  # with test-time augmentation, and plain
        audit_function(function, "eval call", findings, registry)
    return findings


def audit_function(concrete, where, findings, registry):
    """Adds to `findings` what the concrete function `concrete`, called once per `where`, would do on a GPU."""
    graph = concrete.graph.as_graph_def()
    library = {f.signature.name: f for f in graph.library.function}
    _Walk(registry, library, findings).function(graph.node, where, in_xla=False)


def audit_variables(variables, findings, registry):
    """Adds to `findings` every variable whose dtype no GPU `VarHandleOp` holds (soft placement keeps it on the
    host, and every op reading it there)."""
    for variable in variables:
        dtype = tf.as_dtype(variable.dtype)
        if not registry.gpu_kernel(_var_handle(dtype)):
            findings.no_gpu_kernel.append((f"variable {variable.name} [{dtype.name}]", "held on the host"))


def _var_handle(dtype):
    node = node_def_pb2.NodeDef(name="variable", op="VarHandleOp")
    node.attr["dtype"].type = dtype.as_datatype_enum
    return node


def table(results):
    """A markdown table: one row per audited (config, replicas, precision)."""
    lines = [
        "| config | replicas | precision | no GPU kernel | no XLA kernel | refused collectives | host copies per "
        "train step and replica | more in its conditional branches |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (name, replicas, precision), findings in results:
        branch = findings.copies_per_step("a branch of train step")
        lines.append(
            f"| {name} | {replicas} | {precision} | {len(findings.no_gpu_kernel)} | {len(findings.no_xla_kernel)} | "
            f"{len(findings.refused_collectives)} | {findings.copies_per_step():g} | {branch:g} |"
        )
    return "\n".join(lines)


def details(findings):
    """Every finding of one audit, one line each, counted."""
    lines = []
    for title, items in (
        ("no GPU kernel", findings.no_gpu_kernel),
        ("no XLA kernel", findings.no_xla_kernel),
        ("refused collective", findings.refused_collectives),
    ):
        lines += [
            f"  {title}: {what} ({where}) x{n}{_example(findings, what)}"
            for (what, where), n in collections.Counter(items).items()
        ]
    lines += [
        f"  host copy: {edge} ({where}) x{n}{_example(findings, edge)}"
        for (edge, where), n in sorted(findings.host_copies.items())
    ]
    return lines


def _example(findings, what):
    name = findings.examples.get(what)
    return f", e.g. {name}" if name else ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(SHIPPED), help="comma-separated names under configs/")
    parser.add_argument("--replicas", default="1,2", help="comma-separated replica counts (logical devices)")
    parser.add_argument("--precisions", default="", help="comma-separated; default: each one the config allows")
    parser.add_argument("--details", action="store_true", help="list every finding under the table")
    args = parser.parse_args()
    replica_counts = [int(r) for r in args.replicas.split(",")]
    cpu = tf.config.list_physical_devices("CPU")[0]  # before TensorFlow initialises its devices
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * max(replica_counts))
    tf.get_logger().setLevel("ERROR")
    registry = Registry()
    strategies = {
        n: tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(n)]) if n > 1 else tf.distribute.get_strategy()
        for n in replica_counts
    }
    results = []
    for name in args.configs.split(","):
        config = importlib.import_module(f"configs.{name}").get_config()
        for precision in args.precisions.split(",") if args.precisions else allowed_precisions(config):
            for replicas in replica_counts:
                audited = dataclasses.replace(config, precision=precision)
                findings = audit_config(audited, strategies[replicas], registry, name)
                results.append(((name, replicas, precision), findings))
    print(f"TensorFlow {tf.__version__}, built with CUDA: {tf.test.is_built_with_cuda()}")
    print(table(results))
    if args.details:
        for (name, replicas, precision), findings in results:
            print(f"\n{name}, {replicas} replica(s), {precision}:")
            print("\n".join(details(findings)) or "  nothing")


def allowed_precisions(config):
    """The config's own precision, and the others a user may switch it to (every config allows all three)."""
    return (config.precision,) + tuple(p for p in PRECISIONS if p != config.precision)


if __name__ == "__main__":
    main()
