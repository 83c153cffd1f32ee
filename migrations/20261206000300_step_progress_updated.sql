-- A CNI rollout's second count: pods updated (its DaemonSets' and Deployments' updated pods) of
-- those desired, beside the nodes Ready. NULL: the step counts one thing only.
ALTER TABLE run_steps ADD COLUMN progress_updated INTEGER;
ALTER TABLE run_steps ADD COLUMN progress_updated_total INTEGER;
