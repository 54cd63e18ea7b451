"""A plain-text target (no operand padding): held-out error and leading-zero error over training.

Measures whether the target the paper's protocol needs (reads plain text, trained without
leading zeros, fails on them) can be pretrained here: every 1,000 steps, greedy error on 5,000
queries of the training distribution and on 5,000 with a leading zero in one or both operands.

    python benchmarks/plain_text_target.py plain 9000 results/plain_text_target.json
    python benchmarks/plain_text_target.py pad 9000 results/padded_target.json
"""
import json, sys, time, random
import torch, lightning as L
from banel_tasks.addition.target import train_target
from banel_tasks.addition.arith import encode, random_queries

torch.set_num_threads(1)
pad = sys.argv[1] == "pad"
steps = int(sys.argv[2])
out = sys.argv[3]
gen = torch.Generator().manual_seed(99)
pairs = random_queries(5000, 5, gen, "uniform")
rng = random.Random(5)
def lz(a, b):
    sa, sb = str(a), str(b)
    k = rng.choice([0, 1, 2])
    if k in (0, 2) and len(sa) < 5: sa = "0" + sa
    if k in (1, 2) and len(sb) < 5: sb = "0" + sb
    return sa, sb
lzq = [lz(a, b) for a, b in pairs]
hist = []
class Probe(L.Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, idx):
        s = trainer.global_step
        if s % 1000 or s == 0: return
        ans = module.answer([encode(f"{a}+{b}=") for a, b in pairs])
        err = sum(str(a + b) != x for (a, b), x in zip(pairs, ans)) / len(pairs)
        ans = module.answer([encode(f"{a}+{b}=") for a, b in lzq])
        def ok(x, a, b):
            try: return int(x) == int(a) + int(b)
            except ValueError: return False
        lze = sum(not ok(x, a, b) for (a, b), x in zip(lzq, ans)) / len(lzq)
        module.train()
        hist.append({"step": s, "error": err, "lz_error": lze, "t": time.time() - t0})
        print(hist[-1], flush=True)
        json.dump(hist, open(out, "w"))
t0 = time.time()
train_target(5, 0, d_model=128, n_layers=3, n_heads=4, steps=steps, batch_size=128, lr=1e-3,
             warmup=300, pad_operands=pad, progress=False, callbacks=[Probe()])
