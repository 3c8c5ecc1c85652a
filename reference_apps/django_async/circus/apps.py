from django.apps import AppConfig


class CircusConfig(AppConfig):
    name = "circus"
    verbose_name = "Circus"
