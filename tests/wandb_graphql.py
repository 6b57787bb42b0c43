"""The SDK's GraphQL field allowlist moved to relaunch.emulated.wandb_graphql; re-exported for the boundary tests."""

from relaunch.emulated.wandb_graphql import GraphQLSyntaxError, parse, paths, refused, sdk_paths

__all__ = ["GraphQLSyntaxError", "parse", "paths", "refused", "sdk_paths"]
