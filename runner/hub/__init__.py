"""The Hugging Face Hub: ``hf:OWNER/NAME@REVISION`` references pulled and pinned to a commit, tokens and write
access checked before a stage starts, and pushes of record and train runs as runs of their own.

Only ``huggingface_hub`` is called here; LeRobot's own dataset push goes through ``runner.lerobot_adapter.hub``.
Every endpoint works, not only the public Hub: ``HF_ENDPOINT`` names a lab's own (read once, at import, by
``huggingface_hub``). Tokens come from ``HF_TOKEN`` or a saved ``hf auth login``, and are never written.
"""
