"""Gallery routes: projects, the composer, draft grids, image pages, edits, compare, history.

Actions on one image live outside images/<pk>/, whose sub-paths are the media files.
"""

from django.urls import path

from .views import composer, downloads, grid, history, images, projects

urlpatterns = [
    path("t/<slug:slug>/projects/new/", projects.project_new, name="project-new"),
    path("t/<slug:slug>/projects/<int:pk>/", projects.project_page, name="project"),
    path("t/<slug:slug>/projects/<int:pk>/older/", projects.project_older, name="project-older"),
    path("t/<slug:slug>/projects/<int:pk>/rename/", projects.project_rename, name="project-rename"),
    path(
        "t/<slug:slug>/projects/<int:pk>/archive/", projects.project_archive, name="project-archive"
    ),
    path("t/<slug:slug>/projects/<int:pk>/submit/", composer.submit, name="batch-submit"),
    path("t/<slug:slug>/composer/price/", composer.price_line, name="composer-price"),
    path("t/<slug:slug>/references/new/", composer.reference_new, name="reference-new"),
    path("t/<slug:slug>/batches/<int:pk>/poll/", grid.batch_poll, name="batch-poll"),
    path("t/<slug:slug>/batches/<int:pk>/cancel/", grid.batch_cancel_view, name="batch-cancel"),
    path("t/<slug:slug>/images/<int:pk>/", images.image_page, name="image"),
    path("t/<slug:slug>/compare/<int:pk>/", images.compare, name="compare"),
    path("t/<slug:slug>/reuse/<int:pk>/", composer.reuse, name="image-reuse"),
    path("t/<slug:slug>/edit/<int:pk>/", images.image_edit, name="image-edit"),
    path("t/<slug:slug>/vary/<int:pk>/", images.image_vary, name="image-vary"),
    path("t/<slug:slug>/star/<int:pk>/", grid.image_star, name="image-star"),
    path("t/<slug:slug>/selection/promote/", grid.promote_confirm, name="promote-confirm"),
    path("t/<slug:slug>/selection/promote/go/", grid.promote, name="promote"),
    path("t/<slug:slug>/selection/archive/", grid.images_archive, name="images-archive"),
    path("t/<slug:slug>/selection/download/", downloads.download_zip, name="images-download"),
    path("t/<slug:slug>/history/", history.history, name="history"),
]
