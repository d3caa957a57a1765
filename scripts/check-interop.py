#!/usr/bin/env python3
"""Interop checks, run by hand (the test suite never needs Python).

Hugging Face in (when transformers and torch are installed): build transformers'
DecisionTransformerModel with random weights (biases and LayerNorms perturbed so that a
mix-up shows), save it in the Hub's layout (save_pretrained with safetensors), `d4rl-run
import --huggingface` it, and compare `d4rl-run predict` with transformers' action_preds at
every position its attention mask keeps (transformers pads on the left), for relu and
gelu_new models of several shapes.

ONNX out: for the reference fixtures' models (flow and softmax), `d4rl-run import` the
fixture's weights, `d4rl-run export --onnx`, run the model in onnxruntime, and compare its
action predictions with `d4rl-run predict` on the same inputs, to 1e-5 + 1e-4·|ours| at
every real step (attention mask 1):
  - the fixture's own inputs;
  - batch 1 and batch 7 of random windows, padded as DecisionFlow's encoding pads them
    (flow on the right, softmax on the left; states 0, actions -10, returns 0, timesteps 0,
    mask 0).
The largest difference at padded steps is printed too. No policy reads those: under left
padding a padded token's softmax attends only to keys shifted by -1e4, where float32 keeps
about three decimals, so both runtimes compute them to about 1e-2.

    python3 -m venv /tmp/interop
    /tmp/interop/bin/pip install onnxruntime numpy safetensors 'transformers==4.30.2' torch
    /tmp/interop/bin/python scripts/check-interop.py [--shared ../shared] [--binary .build/release/d4rl-run]

Exits 1 when a comparison fails.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

try:
    import onnxruntime as ort
    from safetensors.numpy import load_file, save_file
except ImportError:
    sys.exit("check-interop.py needs onnxruntime, numpy and safetensors: pip install onnxruntime numpy safetensors")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ATOL, RTOL = 1e-5, 1e-4


def run(binary, *arguments):
    done = subprocess.run([binary, *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"d4rl-run {arguments[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def read_metadata(path):
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(size)).get("__metadata__", {})


def import_fixture(binary, fixture, folder):
    """The fixture's initial weights as a checkpoint (identity state statistics, scale 1)."""
    meta = read_metadata(fixture)
    S = int(meta["state_dim"])
    description = {
        "state_dim": S, "act_dim": int(meta["act_dim"]), "hidden_size": int(meta["hidden"]),
        "n_layer": int(meta["n_layer"]), "n_head": int(meta["n_head"]), "n_inner": int(meta["n_inner"]),
        "max_length": int(meta["K"]), "max_ep_len": int(meta["max_ep_len"]),
        "activation_function": "gelu_new" if meta["activation"] == "gelu" else meta["activation"],
        "attention": meta["attention"], "scale": 1, "state_mean": [0] * S, "state_std": [1] * S,
    }
    path = os.path.join(folder, "description.json")
    with open(path, "w") as f:
        json.dump(description, f)
    checkpoint = os.path.join(folder, "checkpoint.safetensors")
    run(binary, "import", "--state-dict", fixture, "--prefix", "param/", "--description", path, "-o", checkpoint)
    return checkpoint, meta


def random_windows(rng, batch, meta, padding):
    """Windows as DecisionFlow's encoding writes them: random lengths, padded on `padding`'s side."""
    K, S, A, T = int(meta["K"]), int(meta["state_dim"]), int(meta["act_dim"]), int(meta["max_ep_len"])
    states = np.zeros((batch, K, S), np.float32)
    actions = np.full((batch, K, A), -10, np.float32)
    returns = np.zeros((batch, K, 1), np.float32)
    timesteps = np.zeros((batch, K), np.int64)
    mask = np.zeros((batch, K), np.float32)
    for b in range(batch):
        length = K if b == 0 else int(rng.integers(1, K + 1))
        slots = slice(0, length) if padding == "right" else slice(K - length, K)
        states[b, slots] = rng.normal(size=(length, S))
        actions[b, slots] = rng.uniform(-1, 1, size=(length, A))
        returns[b, slots, 0] = rng.uniform(0, 4, size=length)
        start = int(rng.integers(0, T - length + 1))
        timesteps[b, slots] = np.arange(start, start + length)
        mask[b, slots] = 1
    return {"states": states, "actions": actions, "returns_to_go": returns, "timesteps": timesteps,
            "attention_mask": mask}


def compare(binary, checkpoint, session, inputs, folder, label):
    path = os.path.join(folder, "inputs.safetensors")
    save_file(inputs, path)
    out = os.path.join(folder, "ours.safetensors")
    run(binary, "predict", "--checkpoint", checkpoint, "--inputs", path, "-o", out)
    ours = load_file(out)["action_preds"]
    theirs = session.run(["action_preds"], inputs)[0]
    real = inputs["attention_mask"] > 0
    error = np.abs(theirs - ours)
    ok = bool(np.all(error[real] <= ATOL + RTOL * np.abs(ours[real])))
    padded = f"; at padding {np.max(error[~real]):.1e}" if np.any(~real) else ""
    print(f"  {label:32s} batch {inputs['states'].shape[0]}: max |onnx - ours| at real steps "
          f"{np.max(error[real]):.1e}{padded}  {'ok' if ok else 'FAILS'}")
    return ok


def check_huggingface(binary, rng):
    """transformers' DecisionTransformerModel against its import; None when transformers is missing."""
    try:
        import torch
        import transformers
        from transformers import DecisionTransformerConfig, DecisionTransformerModel
    except ImportError:
        print("Hugging Face: skipped (pip install 'transformers==4.30.2' torch to run it)")
        return None
    print(f"Hugging Face: transformers {transformers.__version__}, torch {torch.__version__}")
    torch.manual_seed(0)
    ok = True
    for hidden, layers, heads, activation, K in [(32, 2, 2, "relu", 5), (128, 3, 1, "relu", 20), (64, 2, 4, "gelu_new", 10)]:
        S, A, B, T = 11, 3, 4, 1000
        config = DecisionTransformerConfig(
            state_dim=S, act_dim=A, hidden_size=hidden, n_layer=layers, n_head=heads, n_inner=4 * hidden,
            activation_function=activation, max_ep_len=T, action_tanh=True)
        model = DecisionTransformerModel(config).eval()
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name.endswith("bias") or ".ln_" in name or "embed_ln" in name:
                    parameter.add_(0.05 * torch.randn_like(parameter))
        with tempfile.TemporaryDirectory() as folder:
            hub = os.path.join(folder, "hub")
            model.save_pretrained(hub, safe_serialization=True)
            description = os.path.join(folder, "description.json")
            with open(description, "w") as f:
                json.dump({"max_length": K, "state_mean": [0] * S, "state_std": [1] * S, "scale": 1, "env": "hopper"}, f)
            checkpoint = os.path.join(folder, "imported.safetensors")
            run(binary, "import", "--huggingface", hub, "--description", description, "-o", checkpoint)
            # Left padding, as transformers' examples pad: sequence b has its first b steps padded.
            inputs = {
                "states": rng.normal(size=(B, K, S)).astype(np.float32),
                "actions": rng.uniform(-1, 1, size=(B, K, A)).astype(np.float32),
                "returns_to_go": rng.uniform(0, 4, size=(B, K, 1)).astype(np.float32),
                "timesteps": np.stack([np.arange(s, s + K) for s in rng.integers(0, T - K, size=B)]).astype(np.int64),
                "attention_mask": np.ones((B, K), np.float32),
            }
            for b in range(B):
                inputs["attention_mask"][b, :b] = 0
            with torch.no_grad():
                output = model(
                    states=torch.from_numpy(inputs["states"]), actions=torch.from_numpy(inputs["actions"]),
                    rewards=None, returns_to_go=torch.from_numpy(inputs["returns_to_go"]),
                    timesteps=torch.from_numpy(inputs["timesteps"]),
                    attention_mask=torch.from_numpy(inputs["attention_mask"]).long(), return_dict=True)
            theirs = output.action_preds.numpy()
            path = os.path.join(folder, "inputs.safetensors")
            save_file(inputs, path)
            out = os.path.join(folder, "ours.safetensors")
            run(binary, "predict", "--checkpoint", checkpoint, "--inputs", path, "-o", out)
            ours = load_file(out)["action_preds"]
            real = inputs["attention_mask"] > 0
            error = np.abs(ours - theirs)
            good = bool(np.all(error[real] <= ATOL + RTOL * np.abs(theirs[real])))
            ok &= good
            print(f"  hidden {hidden}, {layers} layers, {heads} heads, {activation}, K {K}: max |ours - transformers| "
                  f"at {int(real.sum())} kept positions {np.max(error[real]):.1e}  {'ok' if good else 'FAILS'}")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=os.path.join(os.path.dirname(ROOT), "shared"))
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/d4rl-run"))
    args = parser.parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"{args.binary} is not there: build it with `swift build -c release --product d4rl-run`")
    print(f"onnxruntime {ort.__version__}; tolerance {ATOL} + {RTOL}·|ours|")
    rng = np.random.default_rng(0)
    ok = check_huggingface(args.binary, rng) is not False
    print("ONNX:")
    for name in ["dt_flow_small", "dt_softmax_small", "dt_flow_mid"]:
        fixture = os.path.join(args.shared, "fixtures", "reference", f"{name}.safetensors")
        with tempfile.TemporaryDirectory() as folder:
            checkpoint, meta = import_fixture(args.binary, fixture, folder)
            model = os.path.join(folder, "policy.onnx")
            run(args.binary, "export", checkpoint, "--onnx", model)
            session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
            print(f"{name} ({meta['attention']}, K {meta['K']}, {meta['n_layer']} layers, {meta['n_head']} heads)")
            tensors = load_file(fixture)
            inputs = {key: tensors[f"input/{key}"] for key in
                      ["states", "actions", "returns_to_go", "timesteps", "attention_mask"]}
            ok &= compare(args.binary, checkpoint, session, inputs, folder, "the fixture's inputs")
            padding = "right" if meta["attention"] == "flow" else "left"
            for batch in [1, 7]:
                ok &= compare(args.binary, checkpoint, session, random_windows(rng, batch, meta, padding), folder,
                              f"random windows, padded {padding}")
    print("all agree" if ok else "SOME DISAGREE")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
