"""The model core: vocabulary, network, sampling, generation, checkpoints and device choice.

Plain PyTorch and numpy; nothing here knows about Discord, SQLite or asyncio.
"""
