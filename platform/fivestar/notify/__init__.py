"""Outbound notification channels besides e-mail and the in-app inbox: group robots (群机器人) of
WeCom (企业微信) and DingTalk (钉钉).

A tenant administrator registers a robot's webhook address for the whole district or for one
organisation (`views`, `services`); the outbox (fivestar.outbox.delivery) asks
`services.webhooks_for` which robots a reminder goes to and calls `sending.send` for each.

- `models`: the `Webhook` row and its kinds.
- `encryption`: why and how a robot's address and secret are stored encrypted.
- `url_policy`: which addresses the server may post to (the SSRF guard) and how a page shows them.
- `sending`: the vendors' message formats and the HTTP post.
- `services`: creating, changing, switching and deleting robots; which robots hear of what.
"""
