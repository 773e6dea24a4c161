def b5_project_page(ctx):
    return []


def b6_grid_poll(ctx):
    return []


def b7_history(ctx):
    return []


def b10_page_weight(ctx):
    return []
