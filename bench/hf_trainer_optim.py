"""The optimizer HuggingFace Trainer builds by default (adamw_torch_fused): weight decay 0.01 on all
parameters but biases and LayerNorm weights, lr 5e-5, fused AdamW. Shared by the PyTorch halves of
the step plan and the step benchmark, so both model the same optimizer."""
import torch


def trainer_adamw(model):
    groups = {True: [], False: []}
    for n, p in model.named_parameters():
        groups[not (n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n)].append(p)
    return torch.optim.AdamW([{"params": groups[True], "weight_decay": 0.01},
                              {"params": groups[False], "weight_decay": 0.0}],
                             lr=5e-5, betas=(0.9, 0.999), eps=1e-8, fused=True)
