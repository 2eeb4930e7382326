"""What crosses a deployment's edge: signed signals and feeds, seller identifiers, webhooks."""
