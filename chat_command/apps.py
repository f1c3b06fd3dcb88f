from django.apps import AppConfig


class ChatCommandConfig(AppConfig):
    name = "chat_command"
