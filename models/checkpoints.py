"""Model checkpoint files: one writer and one loader that checks the format field it writes.

A checkpoint is a ``torch.save`` dict with ``format = "posestudio.<model>/<version>"``, the
network's constructor arguments (``net_config``), its weights (``state_dict``, CPU float32) and
how it was made (``train_config``, ``command``, ``log``). :func:`load_checkpoint` refuses a file
that is missing, not a checkpoint, of another model or of an unknown version, naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from posestudio.core.errors import InputError


class CheckpointError(InputError):
    """A checkpoint file that cannot be used; the message names the file and what was expected."""


def format_tag(model: str, version: int) -> str:
    """The ``format`` field of a checkpoint of ``model`` (e.g. ``"posestudio.factorization/1"``)."""
    return f"posestudio.{model}/{version}"


def save_checkpoint(path: str | os.PathLike[str], model: str, version: int, net_config: dict[str, Any],
                    module: torch.nn.Module, **info: Any) -> None:
    """Write a checkpoint atomically (weights moved to the CPU).

    Args:
        path: the ``.pt`` file.
        model, version: what the file holds (see :func:`format_tag`).
        net_config: the network's constructor arguments.
        module: the network.
        info: anything else to keep (``train_config``, ``command``, ``log``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": format_tag(model, version), "net_config": net_config,
                "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()}, **info}, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | os.PathLike[str], model: str, version: int) -> dict[str, Any]:
    """Read a checkpoint of ``model`` at ``version``.

    Returns:
        The checkpoint dict (``net_config``, ``state_dict`` and the rest).
    Raises:
        CheckpointError: missing file, unreadable file, or a ``format`` other than
            :func:`format_tag` ``(model, version)``.
    """
    path = Path(path)
    expected = format_tag(model, version)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found (expected a {expected} file)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise CheckpointError(f"{path}: not a {model} checkpoint written by 'posestudio train {model}' "
                              f"(unreadable: {type(exc).__name__}: {exc})") from None
    found = ckpt.get("format") if isinstance(ckpt, dict) else None
    if found != expected:
        raise CheckpointError(f"{path}: not a {model} checkpoint written by 'posestudio train {model}' "
                              f"(format {found!r}, expected {expected!r})")
    for key in ("net_config", "state_dict"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: field {key!r} missing from the {expected} checkpoint")
    return ckpt
