"""``runner report``: pages made from runs (Markdown, PNGs and a static HTML page in a run of their own)."""
