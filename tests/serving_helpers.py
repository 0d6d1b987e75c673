"""Calling an export from a process that cannot import electra_tf: what a server has."""

from __future__ import annotations

import json
import os
import subprocess
import sys

_SCRIPT = r"""
import json, sys
sys.modules["electra_tf"] = None   # any attempt to import it now raises ImportError
import numpy as np, tensorflow as tf, tensorflow_text  # noqa: F401
model = tf.saved_model.load(sys.argv[1])
inputs = json.load(open(sys.argv[2], encoding="utf-8"))
out = model.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
print(json.dumps({k: (np.char.decode(v.numpy().astype(bytes), "utf-8") if v.dtype == tf.string
                      else v.numpy()).tolist() for k, v in out.items()}))
"""


def serve_without_electra_tf(export_dir, inputs: dict, folder) -> dict:
    """`serving_default(**inputs)` of the SavedModel in `export_dir` (`inputs`: name -> list of
    strings), run by a fresh Python in which `import electra_tf` fails; the outputs as lists,
    strings decoded. `folder`: where the script and inputs are written."""
    script, data = os.path.join(folder, "serve.py"), os.path.join(folder, "serve_inputs.json")
    with open(script, "w", encoding="utf-8") as f:
        f.write(_SCRIPT)
    with open(data, "w", encoding="utf-8") as f:
        json.dump(inputs, f, ensure_ascii=False)
    result = subprocess.run([sys.executable, script, str(export_dir), data], cwd=folder,
                            env=dict(os.environ, PYTHONPATH=""), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
