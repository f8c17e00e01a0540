"""The TensorFlow 2 super-convergence post's example, on Keras 3: `model.fit` with a `OneCycleScheduler` callback.

    python examples/keras_one_cycle.py                 # 3 epochs on the offline quick-start set, ~1 minute on a CPU
    python examples/keras_one_cycle.py --epochs=1 --train_examples=2000    # shorter

As in the post: RMSprop, `lr = 5e-3`, `steps = np.ceil(len(x_train) / batch_size) * epochs`, a small CNN. The one
change for momentum cycling is `onecycle.RMSprop` instead of `keras.optimizers.RMSprop` (with the stock optimizer
the learning rate cycles and a warning says momentum does not). Each epoch prints the learning rate and momentum
the optimizer will use next, read back from it, beside `OneCycle`'s values for that step.
"""

import argparse

import keras
import numpy as np

import onecycle
from input_pipeline import quickstart


def small_cnn(num_classes):
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )


class PrintSchedule(keras.callbacks.Callback):
    """After each epoch: the optimizer's learning rate and momentum for its next step, and OneCycle's."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        step = int(optimizer.iterations.numpy())
        print(
            f"epoch {epoch + 1}: step {step}  lr {float(optimizer.learning_rate):.6g} "
            f"(OneCycle {float(self.schedule(step)):.6g})  momentum {float(optimizer.current_momentum):.4f} "
            f"(OneCycle {float(self.schedule.momentum(step)):.4f})  accuracy {logs['accuracy']:.4f}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train_examples", type=int, default=10_000)
    args = parser.parse_args()

    x_train, y_train = quickstart.generate(args.train_examples, seed=0)
    epochs, batch_size, lr = args.epochs, 128, 5e-3

    steps = np.ceil(len(x_train) / batch_size) * epochs
    lr_schedule = onecycle.OneCycleScheduler(lr, steps)

    model = small_cnn(len(quickstart.CLASS_NAMES))
    optimizer = onecycle.RMSprop(learning_rate=lr)  # the post: tf.keras.optimizers.RMSprop(lr=lr)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        verbose=2,
        callbacks=[lr_schedule, PrintSchedule(lr_schedule.schedule)],
    )
    print(
        f"schedule: {len(lr_schedule.lrs)} steps, lr {lr_schedule.lrs[0]:.3g} -> {lr_schedule.lrs.max():.3g} -> "
        f"{lr_schedule.lrs[-1]:.3g}, momentum {lr_schedule.moms[0]:.2f} -> {lr_schedule.moms.min():.2f} -> "
        f"{lr_schedule.moms[-1]:.2f}"
    )


if __name__ == "__main__":
    main()
