"""The in-app inbox (站内消息): notices delivered to an account through the outbox."""
