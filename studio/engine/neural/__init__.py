"""Published neural networks: safe checkpoint loading, architecture detection, one executor.

Nothing here imports torch at module level except the modules that only run jobs.
"""
