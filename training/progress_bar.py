"""A progress bar on a terminal: where the run is, its speed and its ETA, redrawn twice a second.

A call into the compiled loop runs for seconds without a word from the device, so the bar interpolates the step
from the call's start and the steady step time, and never passes the call's end. The compiling first call is
shown apart ("compiling the training step, 4 s"). Every other line written to stderr (the log) first clears the
bar, which is redrawn under it: the log's lines stay whole and in order. Only on a terminal: when stderr is a
file, the trainer's progress lines are written instead, as before.
"""

import sys
import threading
import time

BAR_WIDTH = 24
REDRAW_SECONDS = 0.5


class ProgressBar:
    """The bar of one run; `start()` takes over stderr (and absl's handler) until `close()`."""

    def __init__(self, total_steps, steps_per_epoch, global_batch, stream=None):
        self.total_steps, self.steps_per_epoch, self.global_batch = total_steps, steps_per_epoch, global_batch
        self._terminal = stream or sys.stderr
        self._lock = threading.RLock()
        self._shown = False
        self._call = None  # (first step, steps, start time, seconds a step or None while compiling)
        self._step, self._steady_seconds = 0, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._redraw_until_closed, name="progress-bar", daemon=True)
        self._replaced = []

    def start(self, step, handlers=(), compiling=False):
        """Shows the bar from `step`, with every write to stderr and to `handlers`' streams clearing it first.
        `compiling`: the process traces its loops before the first call, so the compile's seconds count from here."""
        self._step = step
        if compiling:
            self._call = (step, 0, time.monotonic(), None)
        proxy = _ClearingStream(self._terminal, self)
        self._replaced = [(handler, handler.stream) for handler in handlers if hasattr(handler, "stream")]
        for handler, _ in self._replaced:
            handler.stream = proxy
        self._previous_stderr, sys.stderr = sys.stderr, proxy
        self._thread.start()
        return self

    def call_started(self, step, num_steps, step_seconds, steady=True):
        """A call of `num_steps` steps from `step` at about `step_seconds` a step (None: the compiling call;
        `steady` False: an estimate still holding the compile, good enough to move the bar, not to show)."""
        with self._lock:
            tracing = self._call and self._call[3] is None and step_seconds is None
            started = self._call[2] if tracing else time.monotonic()  # the compile goes on: its seconds too
            self._call = (step, num_steps, started, step_seconds)
            if steady:
                self._steady_seconds = step_seconds

    def call_ended(self, step):
        with self._lock:
            self._call, self._step = None, step
            self._draw()

    def close(self):
        """Clears the bar and gives stderr back."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        with self._lock:
            self.clear()
            sys.stderr = self._previous_stderr
            for handler, stream in self._replaced:
                handler.stream = stream

    def clear(self):
        with self._lock:
            if self._shown:
                self._terminal.write("\r\x1b[K")
                self._terminal.flush()
                self._shown = False

    def text(self, now=None):
        """The bar's line now: the compile's seconds, or the interpolated step, the bar, speed and ETA."""
        now = time.monotonic() if now is None else now
        step, seconds_a_step = self._step, self._steady_seconds
        if self._call:
            first, steps, started, estimate = self._call
            if estimate is None:
                return f"compiling the training step, {now - started:.0f} s"
            step = min(first + int((now - started) / estimate), first + steps)
        done = step / max(self.total_steps, 1)
        filled = int(done * BAR_WIDTH)
        bar = "=" * filled + (">" if filled < BAR_WIDTH else "") + " " * max(BAR_WIDTH - filled - 1, 0)
        line = f"step {step:,}/{self.total_steps:,} [{bar}] {100 * done:3.0f}%  epoch {step / self.steps_per_epoch:.2f}"
        if seconds_a_step:
            eta = (self.total_steps - step) * seconds_a_step
            line += f"  {self.global_batch / seconds_a_step:,.0f} img/s  ETA {int(eta // 60)}m{int(eta % 60):02d}s"
        return line

    def _draw(self):
        with self._lock:
            self._terminal.write("\r" + self.text() + "\x1b[K")
            self._terminal.flush()
            self._shown = True

    def _redraw_until_closed(self):
        while not self._stop.wait(REDRAW_SECONDS):
            self._draw()


class _ClearingStream:
    """stderr for the bar's lifetime: a write clears the bar first; the bar comes back at its next redraw."""

    def __init__(self, terminal, bar):
        self._terminal, self._bar = terminal, bar

    def write(self, text):
        with self._bar._lock:  # noqa: SLF001 (the bar's own lock: a redraw never lands inside a line)
            self._bar.clear()
            return self._terminal.write(text)

    def flush(self):
        self._terminal.flush()

    def __getattr__(self, name):  # isatty, fileno, encoding...
        return getattr(self._terminal, name)
