"""benchmarks.gpu_audit: the registry's answers against TensorFlow's known GPU kernels, each kind of finding
shown on a function made to have it, and every shipped config's loops within a short, commented allowlist."""

import collections
import dataclasses
import importlib

import pytest
import tensorflow as tf

from benchmarks import gpu_audit

pytestmark = pytest.mark.skipif(
    not tf.test.is_built_with_cuda(), reason="this TensorFlow registers no CUDA kernels to audit against"
)

# What the shipped configs' loops still do on a GPU, each with its reason. Only these may appear; the test fails
# on anything new, and on any of these growing.
ALLOWED_NO_GPU_KERNEL = {
    # The epoch order of a call that crosses an epoch's end (data_on_device): StatelessShuffle has no GPU kernel,
    # so once an epoch its permutation is computed on the host (issue 24: an order with GPU kernels is open).
    ("StatelessShuffle[int64]", "a branch of train step"),
}
ALLOWED_COPIES_PER_TRAIN_STEP = {  # per replica, in the step or its conditional branches; augment_on_device only
    # The augmentation's seed is derived from the optimizer's step, an int64 on the device, and stateless
    # random ops take their seed in host memory: one scalar copy, then the split seeds are unstacked there. The
    # second seed copy is the epoch order's, in the branch that runs when a call crosses an epoch's end.
    "Pack[int64] -> StatelessRandomGetKeyCounter.seed": 2,
    "StatelessRandomUniformFullIntV2[int32,int64] -> Unpack.value": 1,
}


@pytest.fixture(scope="module")
def registry():
    return gpu_audit.Registry()


def test_the_registry_knows_what_gpus_lack(registry):
    """Facts about TensorFlow's GPU kernels that do not depend on this project (keras#20250, the issue's review)."""
    assert registry.gpu_kernel(gpu_audit._var_handle(tf.float32))
    assert registry.gpu_kernel(gpu_audit._var_handle(tf.int64))
    assert registry.gpu_kernel(gpu_audit._var_handle(tf.int32)) is None  # int32 variables live on the host

    @tf.function
    def shuffle(x):
        return tf.random.experimental.stateless_shuffle(x, seed=[1, 2])

    graph = shuffle.get_concrete_function(tf.TensorSpec([4], tf.int64)).graph.as_graph_def()
    (node,) = [n for n in graph.node if n.op == "StatelessShuffle"]
    assert registry.gpu_kernel(node) is None and not registry.has_xla_kernel(node)
    (identity,) = [n for n in graph.node if n.op == "Identity"]
    assert registry.gpu_kernel(identity) and registry.has_xla_kernel(identity)


def test_an_op_without_an_xla_kernel_inside_a_compiled_function_is_found(registry):
    compiled = tf.function(lambda x: tf.random.experimental.stateless_shuffle(x, seed=[1, 2]) * 2, jit_compile=True)

    @tf.function
    def step(x):
        return compiled(x) + 1

    findings = gpu_audit.Findings("test")
    gpu_audit.audit_function(step.get_concrete_function(tf.TensorSpec([4], tf.int64)), "train call", findings, registry)
    assert [what for what, _ in findings.no_xla_kernel] == ["StatelessShuffle[int64]"]
    assert not findings.no_gpu_kernel  # the op is inside the XLA cluster: only XLA's kernels matter


def test_a_device_value_feeding_a_host_memory_input_is_a_copy_and_a_constant_is_not(registry):
    @tf.function
    def step(x, n):
        start = tf.cast(tf.reduce_max(x), tf.int64)  # computed on the GPU, in device memory
        moving = tf.slice(x, tf.stack([start]), [2])  # Slice takes `begin` in host memory
        fixed = tf.slice(x, tf.stack([tf.constant(1, tf.int64)]), [2])  # folded by Grappler: no copy
        for _ in tf.range(n):
            x = tf.reshape(x, tf.stack([tf.cast(tf.reduce_sum(x) * 0, tf.int64) + 8]))  # once per loop step
        return moving + fixed, x

    findings = gpu_audit.Findings("test")
    spec = tf.TensorSpec([8], tf.float32), tf.TensorSpec([], tf.int32)
    gpu_audit.audit_function(step.get_concrete_function(*spec), "train call", findings, registry)
    copies = {(edge.split(" -> ")[1], where): n for (edge, where), n in findings.host_copies.items()}
    assert copies == {
        ("Slice.begin", "train call"): 1,
        ("Reshape.shape", "train step"): 1,
        ("AddV2.y", "train call"): 1,  # tf.range's trip count: a bool cast on the device, added on the host
    }
    assert findings.copies_per_step() == 1


def test_a_reduction_of_an_int32_is_refused_and_of_a_float32_is_not(two_replicas):
    @tf.function
    def step():
        def replica_fn():
            context = tf.distribute.get_replica_context()
            return context.all_reduce("sum", tf.constant(1, tf.int32)), context.all_reduce("sum", tf.constant(1.0))

        return two_replicas.run(replica_fn)

    findings = gpu_audit.Findings("test", replicas=2)
    with gpu_audit.recording_reductions(findings):
        step.get_concrete_function()
    assert [what for what, _ in findings.refused_collectives] == ["batch_reduce_to of int32"]


def test_a_variable_of_a_dtype_no_gpu_holds_is_found(registry):
    findings = gpu_audit.Findings("test")
    variables = [tf.Variable(0, dtype=tf.int32, name="counter32"), tf.Variable(0, dtype=tf.int64, name="counter64")]
    gpu_audit.audit_variables(variables, findings, registry)
    assert [what for what, _ in findings.no_gpu_kernel] == ["variable counter32:0 [int32]"]


AUDITS = [(name, 1, None) for name in gpu_audit.SHIPPED] + [(name, 2, None) for name in gpu_audit.SHIPPED]
AUDITS += [(name, 2, "mixed_float16") for name in gpu_audit.SHIPPED]  # loss scaling: its own all-reduce


@pytest.mark.slow
@pytest.mark.parametrize("name, replicas, precision", AUDITS)
def test_the_shipped_configs_loops_are_ready_for_a_gpu(name, replicas, precision, two_replicas, registry):
    config = importlib.import_module(f"configs.{name}").get_config()
    config = dataclasses.replace(config, precision=precision or config.precision)
    strategy = two_replicas if replicas == 2 else tf.distribute.get_strategy()
    findings = gpu_audit.audit_config(config, strategy, registry, name)
    details = "\n".join(gpu_audit.details(findings))
    assert set(findings.no_gpu_kernel) <= ALLOWED_NO_GPU_KERNEL, details
    assert not findings.no_xla_kernel, details
    assert not findings.refused_collectives, details
    per_step = collections.Counter()
    for (edge, where), n in findings.host_copies.items():
        if where.endswith("step"):
            assert where.endswith("train step"), details  # none in the evaluation's steps
            per_step[edge] += n
    for edge, n in per_step.items():
        assert n <= ALLOWED_COPIES_PER_TRAIN_STEP.get(edge, 0) * replicas, details
