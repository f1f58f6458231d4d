"""mentor-relay: a moderated pseudonymous email relay for mentoring programmes."""
