"""What the service may connect to when it calls out (webhooks, calendars): public
addresses only, checked when a URL is written and again at connect time."""
