def b8_ledger(ctx):
    return []
