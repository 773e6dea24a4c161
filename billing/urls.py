from django.urls import path

from . import views

urlpatterns = [
    path("t/<slug:slug>/billing/", views.billing_page, name="billing"),
    path("t/<slug:slug>/billing/balance/", views.balance_fragment, name="billing-balance"),
    path("t/<slug:slug>/billing/top-up/", views.top_up, name="billing-top-up"),
    path("t/<slug:slug>/billing/caps/", views.caps_set, name="billing-caps"),
    path("t/<slug:slug>/billing/settings/", views.settings_set, name="billing-settings"),
    path("t/<slug:slug>/billing/usage/", views.usage, name="billing-usage"),
    path("t/<slug:slug>/billing/usage.csv", views.usage_csv, name="billing-usage-csv"),
    path("t/<slug:slug>/billing/buy/", views.buy, name="billing-buy"),
    path("t/<slug:slug>/billing/bought/", views.bought, name="billing-bought"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
]
