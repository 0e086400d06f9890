"""gunicorn's settings for the web process (the Dockerfile's command, compose and the README).

The access log writes the path without its query string, and no referrer: a webhook's query
carries secrets (Meta's `hub.verify_token`, Kiwify's `?signature=`) and an admin page's a
customer's phone (a search), and no secret or signature may appear in any log (SPEC §9).
"""

accesslog = "-"
# %(U)s is the path alone; %(r)s, gunicorn's default, is the whole request line.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s" %(M)sms'
