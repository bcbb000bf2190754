"""The epoch loop shared by every trainer: mini-batches, validation, early stopping, progress."""
from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

__all__ = ["run_epochs", "torch_threads"]


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with torch using ``n`` threads (None: leave as is); restore the setting afterwards."""
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_epochs(
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    val_loss: Callable[[], float] | None,
    *,
    n_train: int,
    train_norm: float,
    rng: np.random.Generator,
    device: torch.device,
    epochs: int,
    batch_size: int,
    patience: int,
    desc: str,
    progress: bool,
    scheduler=None,
) -> tuple[dict[str, list[float]], int]:
    """Train ``module`` and leave it holding the weights of its best validation epoch.

    ``batch_loss(indices)`` returns the loss of one mini-batch (a mean over its
    events); the epoch's training loss is the sum of batch losses times batch
    sizes divided by ``train_norm``.  Stops after ``patience`` epochs without a
    better validation loss.  Raises ``RuntimeError`` when a loss is not finite.

    Returns
    -------
    (history, best_epoch)
        ``history`` has ``train_loss`` and ``val_loss`` per epoch.
    """
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
    best, best_epoch, best_state, wait = math.inf, -1, None, 0
    n_batches = max(1, math.ceil(n_train / batch_size))
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        module.train()
        total = torch.zeros((), dtype=torch.float64, device=device)
        for batch in np.array_split(rng.permutation(n_train), n_batches):
            loss = batch_loss(torch.as_tensor(batch, device=device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach().double() * len(batch)
        module.eval()
        train_loss = float(total) / train_norm
        validation = val_loss() if val_loss is not None else train_loss
        if not (math.isfinite(train_loss) and math.isfinite(validation)):
            raise RuntimeError(f"training diverged at epoch {epoch}: train loss {train_loss}, val loss {validation}")
        history["train_loss"].append(train_loss)
        history["val_loss"].append(validation)
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{validation:.4f}")
        if scheduler is not None:
            scheduler.step(validation)
        if validation < best:
            best, best_epoch, wait = validation, epoch, 0
            best_state = copy.deepcopy(module.state_dict())
        else:
            wait += 1
            if wait >= patience:
                break
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    return history, best_epoch
