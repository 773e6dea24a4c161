"""Review routes: the client's pages under /r/<token>/, the studio's under /t/<slug>/review/."""

from django.urls import path

from . import client_views, studio_views

urlpatterns = [
    path("r/<str:token>/", client_views.client_page, name="review-client"),
    path("r/<str:token>/unlock/", client_views.client_unlock, name="review-unlock"),
    path("r/<str:token>/name/", client_views.client_name_set, name="review-name"),
    path("r/<str:token>/download/", client_views.client_download, name="review-download"),
    path("r/<str:token>/<int:position>/", client_views.client_image, name="review-image"),
    path("r/<str:token>/<int:position>/mark/", client_views.client_mark, name="review-mark"),
    path(
        "r/<str:token>/<int:position>/comment/", client_views.client_comment, name="review-comment"
    ),
    path(
        "r/<str:token>/<int:position>/<str:kind>/",
        client_views.client_media,
        name="review-media",
    ),
    path("t/<slug:slug>/review/", studio_views.review_list, name="review-list"),
    path("t/<slug:slug>/review/new/", studio_views.review_new, name="review-new"),
    path("t/<slug:slug>/review/<int:pk>/", studio_views.review_detail, name="review-detail"),
    path("t/<slug:slug>/review/<int:pk>/revoke/", studio_views.review_revoke, name="review-revoke"),
    path(
        "t/<slug:slug>/review/<int:pk>/deliver/", studio_views.review_deliver, name="review-deliver"
    ),
    path(
        "t/<slug:slug>/review/images/<int:pk>/comments/",
        studio_views.image_client_comments,
        name="review-image-comments",
    ),
    path("t/<slug:slug>/review/<int:pk>/reopen/", studio_views.review_reopen, name="review-reopen"),
    path(
        "t/<slug:slug>/review/<int:pk>/activity.csv",
        studio_views.review_activity_csv,
        name="review-activity-csv",
    ),
]
