"""What-if WSGI entry points for bench runs only: the real project with one thing taken away.

    gunicorn bench.wsgi_whatif:no_publish   # the Meta webhook stores, but queues no Celery task

Never used by Sara. It measures how much of the webhook's cost one step is, to size a
recommendation in bench/RESULTS.md (here: publishing process_inbound from the web process).
"""

from config.wsgi import application
from messaging.services import inbound

no_publish = application
inbound._queue_processing = lambda message_ids: None
