"""Quality benchmark: one module per task, each exposing `rows(quick: bool) -> list[dict]`.

A row has `task`, `engine`, `dataset` and any of `psnr`, `ssim`, `target`, `note`, `sec_per_mp`.
"""
