"""The distributed training machinery behind train.py: strategies, the compiled loop, checkpoints and reports."""
