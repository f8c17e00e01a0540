"""One place that turns a config's `strategy` into a tf.distribute strategy, before any data or variable exists."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading

import tensorflow as tf

from configs.base import ConfigError
from configs.validation import CHOICES

STRATEGIES = CHOICES["strategy"]


def from_config(config):
    """The strategy of `config.strategy` (with its `devices`, `tpu`, `slurm_port_base`, `cluster_wait_seconds`)."""
    prepare_devices(config.devices)
    return create_strategy(
        config.strategy, config.devices, config.tpu, config.slurm_port_base, config.cluster_wait_seconds
    )


def device_names(devices):
    """[(kind, index)] of a `config.devices` text ("/gpu:0,/gpu:1"; also "GPU:0" or "/device:CPU:1")."""
    names = []
    for text in devices.split(","):
        kind, _, index = text.strip().lower().removeprefix("/").removeprefix("device:").partition(":")
        if kind not in ("cpu", "gpu") or not index.isdigit():
            raise ConfigError(
                f"--config.devices={devices}: {text.strip()!r} is not a device: name them /gpu:N or /cpu:N, "
                "comma-separated (e.g. /gpu:0,/gpu:1)"
            )
        names.append((kind.upper(), int(index)))
    if len(set(names)) < len(names):
        raise ConfigError(f"--config.devices={devices} names a device twice: give each once")
    return names


def prepare_devices(devices):
    """Checks that every device `devices` (a `config.devices` text) names exists, before anything waits on one
    (MirroredStrategy over a device TensorFlow does not have hangs for ever), and splits the CPU into as many
    logical devices as "/cpu:N" asks (`/cpu:0,/cpu:1`: two replicas on any machine, as the tests run them).
    Raises `ConfigError` naming what TensorFlow sees. Must run before TensorFlow starts its runtime."""
    if not devices:
        return
    names = device_names(devices)
    gpus = tf.config.list_physical_devices("GPU")
    missing = [f"/{kind.lower()}:{index}" for kind, index in names if kind == "GPU" and index >= len(gpus)]
    if missing:
        seen = ", ".join(f"/gpu:{i}" for i in range(len(gpus))) or "no GPU"
        raise ConfigError(
            f"--config.devices={devices}: TensorFlow sees {seen} here, not {', '.join(missing)} (check "
            "CUDA_VISIBLE_DEVICES and that the GPU build of TensorFlow is installed: pip install -e '.[gpu]'); on a "
            "CPU, --config.devices=/cpu:0,/cpu:1 gives 2 replicas"
        )
    cpus = 1 + max((index for kind, index in names if kind == "CPU"), default=0)
    if cpus > len(tf.config.get_logical_device_configuration(tf.config.list_physical_devices("CPU")[0]) or [0]):
        try:
            tf.config.set_logical_device_configuration(
                tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * cpus
            )
        except RuntimeError:  # the runtime has started: its CPU devices are fixed
            seen = len(tf.config.list_logical_devices("CPU"))
            if cpus > seen:
                raise ConfigError(
                    f"--config.devices={devices}: this process has already started TensorFlow with {seen} CPU "
                    f"device(s); name devices up to /cpu:{seen - 1}"
                ) from None


def create_strategy(name, devices="", tpu="", slurm_port_base=8888, cluster_wait_seconds=600.0):
    """Returns the tf.distribute strategy called `name`.

    "auto": MultiWorkerMirroredStrategy when TF_CONFIG is set or the process is one of several tasks of a SLURM
    job step (`srun`), MirroredStrategy over `devices` when they are named, or over all GPUs when there are
    several, else the default strategy (one GPU or the CPU).
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")
    if name == "auto":
        if os.environ.get("TF_CONFIG") or _slurm_tasks() > 1:  # before anything initialises the GPUs
            name = "multi_worker"
        elif devices or len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy([d.strip() for d in devices.split(",")] if devices else None)
    if name == "multi_worker":
        if os.environ.get("TF_CONFIG"):
            resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        elif _slurm_tasks() > 1:
            resolver = slurm_cluster_resolver(slurm_port_base)
        else:
            resolver = None
        if resolver is not None:
            check_own_address(resolver)
            with bounded_cluster_wait(resolver, cluster_wait_seconds):
                try:
                    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
                except tf.errors.OpError as error:  # its server did not start after all (the port taken since)
                    if "Could not start gRPC server" not in str(error):
                        raise
                    raise ConfigError(_address_taken(resolver, "TensorFlow could not start its server")) from None
        raise ValueError(
            "strategy 'multi_worker' needs TF_CONFIG describing the cluster or several SLURM tasks (srun): see BUILD.md"
        )
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def check_own_address(resolver):
    """Raises `ConfigError` if this worker's own address in the cluster (TF_CONFIG's, or SLURM's) cannot be bound
    here: TensorFlow would fail with a long traceback naming no port, while the other workers wait for it."""
    address = resolver.cluster_spec().task_address(resolver.task_type, resolver.task_id)
    port = int(address.rpartition(":")[2])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds: a port in TIME_WAIT is free
        try:
            probe.bind(("", port))
        except OSError as error:
            raise ConfigError(_address_taken(resolver, error.strerror or str(error))) from None


def _address_taken(resolver, reason):
    address = resolver.cluster_spec().task_address(resolver.task_type, resolver.task_id)
    who = f"{resolver.task_type} {resolver.task_id}"
    return (
        f"this worker ({who} of the cluster) cannot listen on its address {address} ({reason}): another process "
        f"holds port {address.rpartition(':')[2]}, a second worker started as {who} or another program. Give each "
        "worker its own index and a free port (TF_CONFIG), or stop the other process"
    )


# The watchdog of `bounded_cluster_wait`: argv = parent pid, seconds, first note, note interval, who, members.
_WATCHDOG = """
import os, signal, sys, time
parent, seconds, first, every = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
who, members = sys.argv[5], sys.argv[6]
start, note = time.monotonic(), first
while os.getppid() == parent:
    time.sleep(0.5)
    waited = time.monotonic() - start
    if waited >= seconds:
        sys.stderr.write(f"error: the cluster did not form in {seconds:g} s: this is {who} of [{members}] and not "
                         "every worker answered; start them all (or raise --config.cluster_wait_seconds)\\n")
        sys.stderr.flush()
        os.kill(parent, signal.SIGHUP)
        break
    if waited >= note:
        sys.stderr.write(f"waiting for the cluster ({waited:.0f} s so far): this is {who} of [{members}]\\n")
        sys.stderr.flush()
        note += every
"""


@contextlib.contextmanager
def bounded_cluster_wait(resolver, seconds, first_note=10.0, note_every=60.0):
    """Inside it the cluster of `resolver` forms: MultiWorkerMirroredStrategy waits there for every worker,
    inside TensorFlow and holding the interpreter (no Python signal handler or thread runs, SIGTERM is ignored),
    for ever. A watchdog process says what it waits for after `first_note` seconds, then every `note_every`
    seconds, and after `seconds` ends this process with SIGHUP: exit code 129 (128 + 1, a lost peer, which
    schedulers retry), before anything is written."""
    spec = resolver.cluster_spec().as_dict()
    members = ", ".join(f"{job} {address}" for job, tasks in spec.items() for address in tasks)
    who = f"{resolver.task_type} {resolver.task_id}"
    arguments = [str(os.getpid()), str(seconds), str(first_note), str(note_every), who, members]
    # Under nohup (or any launcher that ignores SIGHUP) the watchdog's SIGHUP would be ignored and the wait
    # endless: its default action, ending the process, holds while the cluster forms.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL) if in_main_thread else None
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, *arguments])
    try:
        yield
    finally:
        watchdog.kill()
        watchdog.wait()
        if in_main_thread:
            signal.signal(signal.SIGHUP, previous)


def _slurm_tasks():
    """The number of tasks of the SLURM job step this process belongs to (1 outside `srun`)."""
    return int(os.environ.get("SLURM_STEP_NUM_TASKS", "1"))


def slurm_cluster_resolver(port_base):
    """TensorFlow's SlurmClusterResolver for this job step: task i listens on port_base + its index on its node.

    On GPU nodes it gives each task its share of the node's GPUs (it sets CUDA_VISIBLE_DEVICES, so this must run
    before TensorFlow touches a GPU). On CPU-only nodes, where it would otherwise look for nvidia-smi, each task
    gets no GPU, so that MultiWorkerMirroredStrategy computes on the CPU (with a nominal GPU per task, as
    before, it placed every op on a GPU that is not there: soft placement ran them on the CPU, but the run took
    itself for a GPU run and turned on XLA and op determinism, which together refuse MaxPool's gradient).
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES") or shutil.which("nvidia-smi"):
        return tf.distribute.cluster_resolver.SlurmClusterResolver(port_base=port_base)
    tasks_per_node = max(int(n.split("(")[0]) for n in os.environ["SLURM_STEP_TASKS_PER_NODE"].split(","))
    # a nominal GPU slot per task keeps the resolver's arithmetic whole (it steps through GPUs by gpus_per_task)
    return _CpuSlurmClusterResolver(
        port_base=port_base, gpus_per_node=tasks_per_node, gpus_per_task=1, auto_set_gpu=False
    )


class _CpuSlurmClusterResolver(tf.distribute.cluster_resolver.SlurmClusterResolver):
    """SLURM's cluster on CPU-only nodes: no accelerators, whatever its nominal GPU slots."""

    def num_accelerators(self, task_type=None, task_id=None, config_proto=None):
        return {}


def is_chief(strategy):
    """True on the one task that writes summaries, reports and exported models."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def num_workers(strategy):
    """How many processes (workers and chief) the strategy spans: 1 but for a MultiWorkerMirroredStrategy."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return 1
    jobs = resolver.cluster_spec().as_dict()
    return max(sum(len(tasks) for tasks in jobs.values()), 1)


def task_id(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    return getattr(resolver, "task_id", 0) or 0


def gathered_integers(strategy, values):
    """Every replica's list of `values` (integers of magnitude below 2**24, the same length everywhere) as an
    int array [replicas, len(values)], by one all-gather: how workers learn what each other decided alone."""
    local = strategy.run(lambda: tf.constant(values, tf.float32))  # float32: GPU collectives refuse int32
    return strategy.gather(local, axis=0).numpy().reshape(-1, len(values)).round().astype(int)


def smallest_over_workers(strategy, value):
    """The smallest of every worker's `value`: for a choice each worker would otherwise make from its own clock,
    where all of them must make the same one (the steps of a call into the loop: a worker that ran a call of
    another length waits in a collective for ever)."""
    return int(gathered_integers(strategy, [value]).min())


def resolve_jit_compile(config, strategy):
    """`config.jit_compile`, or for None (auto): XLA on where it pays, off for float32 on a CPU.

    On: GPUs and TPUs, and mixed precision (which a CPU runs fast only under XLA). Off: float32 on a CPU, where
    per-replica XLA measured 0.7-0.8x the speed of TensorFlow's own kernels (benchmarks/README.md), and with
    synchronized BatchNorm, whose all-reduce the per-replica compilation cannot contain.
    """
    if config.jit_compile is not None:
        return config.jit_compile
    if config.deterministic:  # asked for: XLA has no deterministic MaxPool gradient (see resolve_deterministic)
        return False
    return (on_accelerator(strategy) or config.precision != "float32") and not config.sync_batch_norm


def resolve_deterministic(config, strategy):
    """`config.deterministic`, or for None (auto): on for GPUs where XLA is off, else off.

    On a GPU, cuDNN's autotuned convolutions and atomic reductions make two runs (and a resumed run and an
    uninterrupted one) differ in the low bits unless op determinism is on. But with op determinism on, XLA
    refuses to compile MaxPool's gradient ("GPU MaxPool gradient ops do not yet have a deterministic XLA
    implementation", on every device), and every model here pools: so with XLA (the GPU default, and always on
    a TPU) it stays off, and asking for it turns XLA's auto rule off. A CPU's kernels are deterministic already
    (the exact-resume tests pass bit for bit without it), and there it cost about 8% of the speed (BUILD.md
    "Faults").
    """
    if config.deterministic is not None:
        return config.deterministic
    return device_kinds(strategy) == {"GPU"} and not resolve_jit_compile(config, strategy)


def on_accelerator(strategy):
    """Whether the strategy computes on GPUs or TPUs."""
    return bool(device_kinds(strategy) & {"GPU", "TPU"})


def device_kinds(strategy):
    """The kinds of device ("CPU", "GPU", "TPU") the strategy computes on. The default strategy has no device
    list: it runs on the first TPU or GPU when there is one."""
    if strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy():
        return next(({kind} for kind in ("TPU", "GPU") if tf.config.list_logical_devices(kind)), {"CPU"})
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return {"TPU"}
    devices = [device.upper() for device in strategy.extended.worker_devices]
    return {kind for kind in ("CPU", "GPU", "TPU") for device in devices if f":{kind}:" in device}
