from django.apps import AppConfig


class ChatQueryConfig(AppConfig):
    name = "chat_query"
