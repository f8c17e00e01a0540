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

# What the shipped configs' loops still do on a GPU, each with its reason: the test fails on anything else, and
# on any of these growing. Per replica and training step, in the step or its conditional branches.
ALLOWED_COPIES_PER_TRAIN_STEP = {
    # mixed_float16 only: Keras's dynamic loss scaling decides with tf.cond whether the gradients are finite (on
    # one replica, their All; on more, our all-reduced flag's Equal) and, in the finite branch, whether to grow
    # the scale (its step counter's Equal): two scalar reads by the host a step.
    "All[int32] -> If.cond": 1,
    "Equal[float32] -> If.cond": 1,
    "Equal[int64] -> If.cond": 1,
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


def test_a_cond_on_a_device_value_waits_for_its_predicate_on_the_host(registry):
    @tf.function
    def step(x):
        return tf.cond(tf.reduce_sum(x) > 0, lambda: x * 2, lambda: x)  # lowered to Switch: a host predicate

    findings = gpu_audit.Findings("test")
    gpu_audit.audit_function(step.get_concrete_function(tf.TensorSpec([8])), "train call", findings, registry)
    assert dict(findings.host_copies) == {("Greater[float32] -> StatelessIf.cond", "train call"): 1}


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
    assert not findings.no_gpu_kernel, details
    assert not findings.no_xla_kernel, details
    assert not findings.refused_collectives, details
    per_step = collections.Counter()
    for (edge, where), n in findings.host_copies.items():
        if where.endswith("step"):
            assert where.endswith("train step"), details  # none in the evaluation's steps
            per_step[edge] += n
    for edge, n in per_step.items():
        assert config.precision == "mixed_float16" and n <= ALLOWED_COPIES_PER_TRAIN_STEP.get(edge, 0) * replicas, (
            details
        )
