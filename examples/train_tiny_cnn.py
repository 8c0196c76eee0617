"""Train a small convolutional network with NumPy and cyconv alone.

The data set is made here: 16x16 grey images of four shapes (a hollow box, a
disc, a plus and a cross) at random sizes and places, with random contrast
and Gaussian noise. The network::

    conv 3x3, 1 -> 8 channels, padding 1 -> ReLU -> max-pool 2x2
    conv 3x3, 8 -> 16 channels, padding 1 -> ReLU -> max-pool 2x2
    linear 256 -> 4 -> softmax cross-entropy

The convolutions run forward with :func:`cyconv.conv2d` and backward with
:mod:`cyconv.grad` (``conv2d_input``, ``conv2d_weight``, ``conv2d_bias``);
ReLU, pooling, the linear layer and the loss are NumPy; plain SGD with
momentum updates the weights. No autograd framework is involved.

Usage::

    python examples/train_tiny_cnn.py              # 8 epochs on 8000 images
    python examples/train_tiny_cnn.py --quick      # 3 epochs on 3000 images (CI)
    python examples/train_tiny_cnn.py --epochs 12 --threads 2

It prints a progress bar per epoch, the mean training loss of each epoch and
the accuracy on held-out test images; ``--quick`` reaches at least 90 %
(:data:`QUICK_ACCURACY`), the full run about 99 %.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

import cyconv
from cyconv import grad

CLASSES = ("box", "disc", "plus", "cross")
SIZE = 16
#: Test accuracy that ``--quick`` reaches (asserted by tests/test_examples.py).
QUICK_ACCURACY = 0.90

Params = Dict[str, np.ndarray]


# --------------------------------------------------------------------------- data


def make_dataset(n: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """``n`` images ``(n, 1, 16, 16)`` float32 and their labels ``(n,)`` (balanced classes)."""
    labels = np.arange(n) % len(CLASSES)
    rng.shuffle(labels)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    images = np.empty((n, 1, SIZE, SIZE), dtype=np.float32)
    for i, label in enumerate(labels):
        r = rng.uniform(3.0, 6.5)  # half the size of the shape
        cy, cx = rng.uniform(r, SIZE - 1 - r, size=2)
        dy, dx = yy - cy, xx - cx
        if CLASSES[label] == "box":
            edge = np.maximum(np.abs(dy), np.abs(dx))
            shape = np.abs(edge - r) < 0.75
        elif CLASSES[label] == "disc":
            shape = dy**2 + dx**2 < r**2
        elif CLASSES[label] == "plus":
            shape = ((np.abs(dy) < 0.9) & (np.abs(dx) < r)) | (
                (np.abs(dx) < 0.9) & (np.abs(dy) < r)
            )
        else:  # cross: the two diagonals
            near = (np.abs(dy - dx) < 1.1) | (np.abs(dy + dx) < 1.1)
            shape = near & (np.abs(dy) < r) & (np.abs(dx) < r)
        contrast = rng.uniform(0.6, 1.4)
        images[i, 0] = contrast * shape + rng.normal(0.0, 0.35, (SIZE, SIZE))
    return images, labels


# --------------------------------------------------------------------------- the network


def init_params(rng: np.random.Generator) -> Params:
    """He-initialised weights, zero biases (float32)."""

    def he(shape: Tuple[int, ...], fan_in: int) -> np.ndarray:
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    return {
        "w1": he((8, 1, 3, 3), 9),
        "b1": np.zeros(8, np.float32),
        "w2": he((16, 8, 3, 3), 72),
        "b2": np.zeros(16, np.float32),
        "w3": he((16 * 4 * 4, len(CLASSES)), 256),
        "b3": np.zeros(len(CLASSES), np.float32),
    }


#: The four positions of a 2x2 pooling window: (row, column) offsets.
WINDOW = ((0, 0), (0, 1), (1, 0), (1, 1))


def _relu_pool(z: np.ndarray) -> Tuple[np.ndarray, List[np.ndarray]]:
    """ReLU then 2x2 max-pooling; also the masks of each window's (positive) maximum.

    Mask ``m`` marks the positions ``WINDOW[m]`` of the windows whose maximum
    they hold, where that maximum is positive: the gradient of the ReLU and
    the pooling together goes there (ties share it; below zero the ReLU
    stops it). Each step reads the four strided quarters of ``z``, whose rows
    are long, rather than a 6-D view with axes of 2.
    """
    quarters = [z[:, :, i::2, j::2] for i, j in WINDOW]
    out = np.maximum(np.maximum(quarters[0], quarters[1]), np.maximum(quarters[2], quarters[3]))
    np.maximum(out, 0, out=out)
    masks = [(q == out) & (q > 0) for q in quarters]
    return out, masks


def _relu_pool_grad(g: np.ndarray, masks: List[np.ndarray]) -> np.ndarray:
    """Gradient of :func:`_relu_pool`: each window's gradient to its positive maximum."""
    N, C, h, w = g.shape
    out = np.empty((N, C, 2 * h, 2 * w), dtype=g.dtype)
    for (i, j), m in zip(WINDOW, masks):
        np.multiply(g, m, out=out[:, :, i::2, j::2])
    return out


def forward(p: Params, x: np.ndarray, n_threads: Optional[int] = None):
    """Logits and the intermediate values the backward pass needs."""
    z1 = cyconv.conv2d(x, p["w1"], p["b1"], padding=1, n_threads=n_threads)
    a1, arg1 = _relu_pool(z1)
    z2 = cyconv.conv2d(a1, p["w2"], p["b2"], padding=1, n_threads=n_threads)
    a2, arg2 = _relu_pool(z2)
    flat = a2.reshape(len(x), -1)
    logits = flat @ p["w3"] + p["b3"]
    return logits, (x, z1, arg1, a1, z2, arg2, flat)


def loss_and_grads(
    p: Params, x: np.ndarray, labels: np.ndarray, n_threads: Optional[int] = None
) -> Tuple[float, Params]:
    """Mean cross-entropy of a batch and its gradient with respect to every parameter."""
    logits, (x, z1, arg1, a1, z2, arg2, flat) = forward(p, x, n_threads)
    n = len(x)
    shifted = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(shifted)
    prob /= prob.sum(axis=1, keepdims=True)
    loss = float(-np.log(prob[np.arange(n), labels] + 1e-12).mean())
    dlogits = prob
    dlogits[np.arange(n), labels] -= 1
    dlogits /= n
    g: Params = {"w3": flat.T @ dlogits, "b3": dlogits.sum(axis=0)}
    da2 = (dlogits @ p["w3"].T).reshape(n, 16, 4, 4)
    dz2 = _relu_pool_grad(da2, arg2)
    g["w2"] = grad.conv2d_weight(a1, p["w2"].shape, dz2, padding=1, n_threads=n_threads)
    g["b2"] = grad.conv2d_bias(dz2)
    da1 = grad.conv2d_input(a1.shape, p["w2"], dz2, padding=1, n_threads=n_threads)
    dz1 = _relu_pool_grad(da1, arg1)
    g["w1"] = grad.conv2d_weight(x, p["w1"].shape, dz1, padding=1, n_threads=n_threads)
    g["b1"] = grad.conv2d_bias(dz1)
    return loss, g


def sgd_step(p: Params, g: Params, velocity: Params, lr: float, momentum: float = 0.9) -> None:
    """One step of SGD with momentum, in place."""
    for name in p:
        v = velocity.setdefault(name, np.zeros_like(p[name]))
        v *= momentum
        v -= lr * g[name].astype(np.float32)
        p[name] += v


def accuracy(p: Params, x: np.ndarray, labels: np.ndarray, n_threads: Optional[int] = None):
    """Share of ``x`` classified correctly."""
    hits = 0
    for i in range(0, len(x), 500):
        logits, _ = forward(p, x[i : i + 500], n_threads)
        hits += int((logits.argmax(axis=1) == labels[i : i + 500]).sum())
    return hits / len(x)


# --------------------------------------------------------------------------- training


def _bar(done: int, total: int, width: int = 30) -> str:
    full = width * done // total
    return "[" + "#" * full + "-" * (width - full) + "]"


def train(
    epochs: int,
    n_train: int,
    n_test: int,
    batch: int = 50,
    lr: float = 0.05,
    seed: int = 0,
    n_threads: Optional[int] = None,
    out=sys.stdout,
) -> Tuple[List[float], float]:
    """Train from scratch; returns the mean loss of each epoch and the test accuracy."""
    rng = np.random.default_rng(seed)
    x_train, y_train = make_dataset(n_train, rng)
    x_test, y_test = make_dataset(n_test, rng)
    params = init_params(rng)
    velocity: Params = {}
    steps = n_train // batch
    losses = []
    start = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(n_train)
        total = 0.0
        for step in range(steps):
            idx = order[step * batch : (step + 1) * batch]
            loss, g = loss_and_grads(params, x_train[idx], y_train[idx], n_threads)
            sgd_step(params, g, velocity, lr)
            total += loss
            if step % 10 == 9 or step == steps - 1:
                out.write(
                    f"\repoch {epoch + 1}/{epochs} {_bar(step + 1, steps)} "
                    f"{step + 1}/{steps} loss {total / (step + 1):.4f}"
                )
                out.flush()
        losses.append(total / steps)
        out.write(
            f"\repoch {epoch + 1}/{epochs} {_bar(steps, steps)} {steps}/{steps} "
            f"loss {losses[-1]:.4f} ({time.perf_counter() - start:.1f} s)\n"
        )
    acc = accuracy(params, x_test, y_test, n_threads)
    out.write(f"test accuracy: {100 * acc:.1f} % on {n_test} images\n")
    return losses, acc


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="passes over the training set")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a reduced run for CI: 3 epochs on 3000 images, "
        f"at least {100 * QUICK_ACCURACY:.0f} %% test accuracy",
    )
    parser.add_argument("--train-size", type=int, default=None, help="training images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="cyconv's n_threads")
    args = parser.parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (3 if args.quick else 8)
    n_train = args.train_size if args.train_size is not None else (3000 if args.quick else 8000)
    n_test = 1000 if args.quick else 2000
    losses, acc = train(epochs, n_train, n_test, seed=args.seed, n_threads=args.threads)
    if args.quick and acc < QUICK_ACCURACY:
        print(f"below the expected {100 * QUICK_ACCURACY:.0f} %", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
