"""The run directory: a trained model with its config, weights, checkpoints and logs.

``load(run_dir)`` gives a :class:`Run` whose ``encode(x)`` is the representation; the training
loop writes run directories, the evaluation protocol and the report read them.
"""

from replab.run.directory import (
    Run,
    build_model,
    load,
    pick_device,
    prepare_run_dir,
    read_config,
    read_data_info,
    save_data_info,
    write_run_files,
)

__all__ = [
    "Run",
    "build_model",
    "load",
    "pick_device",
    "prepare_run_dir",
    "read_config",
    "read_data_info",
    "save_data_info",
    "write_run_files",
]
