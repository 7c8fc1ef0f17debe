"""The module layout, names, version, stubs and the abi3 tag."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import wse_server
from wse_server import _wse_accel

SPEC_ALL = [
    "RustWSEServer", "RustCompressionManager", "RustEventSequencer",
    "RustPriorityMessageQueue", "RustPriorityQueue", "RustSequencer",
    "RustTokenBucket", "rust_jwt_encode", "rust_jwt_decode",
    "rust_aes_gcm_encrypt", "rust_aes_gcm_decrypt", "rust_ecdh_generate_keypair",
    "rust_ecdh_derive_shared_secret", "rust_hmac_sha256", "rust_sha256",
    "rust_compress", "rust_decompress", "rust_should_compress", "rust_sign_message",
    "rust_match_event", "rust_transform_event", "EventFilter", "EventPriority",
    "DeliveryGuarantee", "__version__",
]


def test_all_names_of_the_spec_are_exported() -> None:
    assert wse_server.__all__[: len(SPEC_ALL)] == SPEC_ALL
    for name in wse_server.__all__:
        assert hasattr(wse_server, name), name
    assert wse_server.LogReader is _wse_accel.LogReader


def test_native_module_holds_the_classes_and_functions() -> None:
    classes = ["RustWSEServer", "RustCompressionManager", "RustEventSequencer", "RustPriorityMessageQueue",
               "RustPriorityQueue", "RustSequencer", "RustTokenBucket"]
    for name in classes:
        assert isinstance(getattr(_wse_accel, name), type)
    functions = [n for n in SPEC_ALL if n.startswith("rust_")]
    assert len(functions) == 14
    for name in functions:
        assert callable(getattr(_wse_accel, name))
    from wse_server._wse_accel import RustWSEServer, rust_jwt_decode  # noqa: F401  (as the upstream tests do)


def test_version() -> None:
    assert isinstance(wse_server.__version__, str)
    assert wse_server.__version__ == _wse_accel.__version__
    assert wse_server.__version__.count(".") == 2


def test_core_submodules() -> None:
    from wse_server.core.filters import EventFilter
    from wse_server.core.types import DeliveryGuarantee, EventPriority

    assert [p.value for p in EventPriority] == [10, 8, 5, 3, 1]
    assert EventPriority.CRITICAL.value == 10 and EventPriority.BACKGROUND.value == 1
    assert DeliveryGuarantee.AT_MOST_ONCE.value == "at_most_once"
    assert EventFilter.matches({"a": {"b": 3}}, {"a.b": {"$gt": 2}})
    assert not EventFilter.matches({"a": 1}, {"a": 2})


@pytest.mark.parametrize("name", ["RustWSEServer", "RustTokenBucket", "RustPriorityQueue", "LogReader"])
def test_classes_are_not_subclassable(name: str) -> None:
    with pytest.raises(TypeError, match="not an acceptable base type"):
        type("Sub", (getattr(_wse_accel, name),), {})


def test_typed_package_ships_stubs_and_marker() -> None:
    root = Path(wse_server.__file__).parent
    assert (root / "py.typed").exists()
    assert (root / "_wse_accel.pyi").exists()


def test_stubs_match_the_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "wse_server"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_extension_is_abi3() -> None:
    assert _wse_accel.__file__ is not None
    assert _wse_accel.__file__.endswith(".abi3.so"), _wse_accel.__file__


def _later_pythons() -> list[str]:
    """Interpreters of CPython 3.12 and later found on this machine (PATH,
    and pyenv's versions when pyenv is there)."""
    import glob
    import os
    import shutil

    found = []
    for minor in range(12, 20):
        exe = shutil.which(f"python3.{minor}")
        if exe:
            found.append(exe)
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found += sorted(glob.glob(os.path.join(root, "versions", "3.1[2-9]*", "bin", "python3")))
    usable = []
    for exe in found:
        probe = subprocess.run([exe, "-c", "import sys; print(sys.version_info >= (3, 12))"],
                               capture_output=True, text=True, timeout=30)
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            usable.append(exe)
    return usable


def test_the_abi3_module_imports_on_later_cpythons() -> None:
    pythons = _later_pythons()
    if not pythons:
        pytest.skip("no CPython >= 3.12 on this machine")
    package_root = str(Path(wse_server.__file__).parent.parent)
    code = ("import wse_server, sys; s = wse_server.RustWSEServer('127.0.0.1', 0); s.start(); "
            "assert s.local_port(); s.stop(); print(sys.version_info[:2])")
    for exe in pythons:
        done = subprocess.run([exe, "-c", code], capture_output=True, text=True, timeout=60,
                              env={"PYTHONPATH": package_root, "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, (exe, done.stderr)
