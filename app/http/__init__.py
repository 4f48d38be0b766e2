"""The HTTP edge: the GraphQL view, GraphiQL served offline, health and body limits."""
