"""Put this folder on PYTHONPATH to hide TensorFlow from a Python process, as on the GPU machines' image (JAX and
PyTorch only): any import of it fails as if it were not installed (tests/test_gpu_check.py)."""

import sys


class _NoTensorFlow:
    """A meta-path finder that refuses tensorflow and its submodules."""

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by tests/no_tensorflow)", name=name)
        return None


sys.meta_path.insert(0, _NoTensorFlow())
