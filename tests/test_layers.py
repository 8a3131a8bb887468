"""The layers hold at import time too: the configuration layer loads no torch, and the package
itself loads the Python API only when it is used. (``make test`` checks every import against
the layer contract in pyproject.toml with import-linter.)"""

import subprocess
import sys


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_config_layer_imports_no_torch():
    loaded = _modules_after("import replab.config, replab.files, replab.specs, replab.registry")
    assert not {"torch", "numpy", "replab.data", "replab.methods"} & loaded


def test_the_package_loads_the_api_on_first_use():
    assert "torch" not in _modules_after("import replab")
    loaded = _modules_after("import replab; replab.train")
    assert {"replab.api", "replab.training.loop", "torch"} <= loaded


def test_the_api_function_and_the_training_package_do_not_shadow_each_other():
    import replab
    import replab.training.loop

    assert callable(replab.train) and replab.train.__module__ == "replab.api"
    assert replab.training.loop.train is not replab.train
