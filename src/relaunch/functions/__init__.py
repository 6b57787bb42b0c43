"""Cloud Functions entry points: request -> trigger parser -> service -> status code. Nothing else lives here."""
