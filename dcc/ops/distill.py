"""distill.*: teacher responses, chain-of-thought, coresets and prompt compression."""
