"""Deployments from the process's side: pull steps, and executing a deployment's flow run by id.

Free functions over flows and flow runs (see DESIGN.md, section 2); nothing here
imports the server.
"""
