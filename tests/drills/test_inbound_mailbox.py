"""On the cluster, mail sent back to Herald reaches the inbound mailbox and beat acts on it.

Someone writes to the demo sender's unsubscribe address by hand (no token): within beat's 30 s
round the mailbox reader unsubscribes that address in the workspace sending from the domain.
"""

import smtplib
from email.message import EmailMessage

import pytest

pytestmark = pytest.mark.drill


def test_an_emailed_unsubscribe_reaches_the_inbound_mailbox_and_is_applied(healthy_cluster):
    cluster = healthy_cluster
    with cluster.database() as connection:
        subscriber_id, address = connection.execute(
            """SELECT s.id, s.email FROM subscribers_subscriber s JOIN accounts_workspace w ON w.id = s.workspace_id
               WHERE w.slug = 'demo' AND s.status = 'active' ORDER BY s.id LIMIT 1"""
        ).fetchone()
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = address, "unsubscribe@demo.herald.test", "unsubscribe"
    message.set_content("Please stop sending me the newsletter.")
    with smtplib.SMTP("127.0.0.1", cluster.stack.port("inbound"), timeout=10) as client:
        client.send_message(message)

    def unsubscribed() -> bool:
        with cluster.database() as connection:
            status = connection.execute("SELECT status FROM subscribers_subscriber WHERE id = %s", (subscriber_id,))
            return status.fetchone()[0] == "unsubscribed"

    waited = cluster.wait_for(unsubscribed, timeout=75, what="the emailed unsubscribe to be applied", interval=1)
    print(f"emailed unsubscribe applied after {waited:.1f} s")
    assert not list((cluster.stack.var / "inbound" / "messages").glob("*.eml"))  # taken out of the mailbox
