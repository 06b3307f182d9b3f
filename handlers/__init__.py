"""backup-responder: the pipeline behind the Azure Functions triggers."""
