"""Gallery routes: projects, the composer, draft grids, image pages, edits, compare, history.

Actions on one image live outside images/<pk>/, whose sub-paths are the media files.
"""

from django.urls import path

from .views import campaigns, composer, downloads, grid, history, images, projects

urlpatterns = [
    path("t/<slug:slug>/projects/new/", projects.project_new, name="project-new"),
    path("t/<slug:slug>/projects/<id:pk>/", projects.project_page, name="project"),
    path("t/<slug:slug>/projects/<id:pk>/older/", projects.project_older, name="project-older"),
    path("t/<slug:slug>/projects/<id:pk>/rename/", projects.project_rename, name="project-rename"),
    path(
        "t/<slug:slug>/projects/<id:pk>/archive/", projects.project_archive, name="project-archive"
    ),
    path("t/<slug:slug>/projects/<id:pk>/submit/", composer.submit, name="batch-submit"),
    path("t/<slug:slug>/composer/price/", composer.price_line, name="composer-price"),
    path("t/<slug:slug>/references/new/", composer.reference_new, name="reference-new"),
    path("t/<slug:slug>/batches/<id:pk>/poll/", grid.batch_poll, name="batch-poll"),
    path("t/<slug:slug>/batches/<id:pk>/cancel/", grid.batch_cancel_view, name="batch-cancel"),
    path("t/<slug:slug>/images/<id:pk>/", images.image_page, name="image"),
    path("t/<slug:slug>/compare/", images.compare_many, name="compare-many"),
    path("t/<slug:slug>/compare/<id:pk>/", images.compare, name="compare"),
    path("t/<slug:slug>/reuse/<id:pk>/", composer.reuse, name="image-reuse"),
    path("t/<slug:slug>/star/<id:pk>/", grid.image_star, name="image-star"),
    path("t/<slug:slug>/reject/<id:pk>/", grid.image_reject, name="image-reject"),
    path("t/<slug:slug>/rate/<id:pk>/", grid.image_rate, name="image-rate"),
    path("t/<slug:slug>/edit/<id:pk>/", images.image_edit, name="image-edit"),
    path("t/<slug:slug>/edit/<id:pk>/panel/", images.image_edit_panel, name="image-edit-panel"),
    path("t/<slug:slug>/vary/<id:pk>/", images.image_vary, name="image-vary"),
    path("t/<slug:slug>/selection/promote/", grid.promote_confirm, name="promote-confirm"),
    path("t/<slug:slug>/selection/promote/go/", grid.promote, name="promote"),
    path("t/<slug:slug>/selection/archive/", grid.images_archive, name="images-archive"),
    path("t/<slug:slug>/selection/restore/", grid.images_restore, name="images-restore"),
    path("t/<slug:slug>/selection/download/", downloads.download_zip, name="images-download"),
    path("t/<slug:slug>/selection/sheet.pdf", downloads.contact_sheet, name="contact-sheet"),
    path("t/<slug:slug>/history/", history.history, name="history"),
    path("t/<slug:slug>/campaigns/", campaigns.campaign_list, name="campaigns"),
    path("t/<slug:slug>/campaigns/new/", campaigns.campaign_new, name="campaign-new"),
    path("t/<slug:slug>/campaigns/<id:pk>/", campaigns.campaign_page, name="campaign"),
    path(
        "t/<slug:slug>/campaigns/<id:pk>/submit/", campaigns.campaign_submit, name="campaign-submit"
    ),  # fmt: skip
    path(
        "t/<slug:slug>/campaigns/<id:pk>/pause/",
        campaigns.campaign_pause_view,
        name="campaign-pause",
    ),  # fmt: skip
    path(
        "t/<slug:slug>/campaigns/<id:pk>/resume/",
        campaigns.campaign_resume_view,
        name="campaign-resume",
    ),  # fmt: skip
    path(
        "t/<slug:slug>/campaigns/<id:pk>/cancel/",
        campaigns.campaign_cancel_view,
        name="campaign-cancel",
    ),  # fmt: skip
    path("t/<slug:slug>/usage/projects/", projects.usage_projects, name="usage-projects"),
]
