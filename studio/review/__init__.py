"""Client review: a capability link that shows a client exactly the images it names.

models (links, the images they name, the client's marks, comments and the
activity log), services (writes), selectors (reads), views for the client
(`client_views`, no account) and for the studio (`studio_views`).
"""
