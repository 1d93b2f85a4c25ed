//! The blue-green plan of a change: which colour it builds, from which, and in which stack. The
//! engine carries it out (`ssr::lifecycle::engine::blue_green`: health wait, switch, bake, removal
//! of the old colour); stack names come from [`super::stacks`].

use super::{
    lifecycle::OperationKind,
    model::{BlueGreen, Color, Deployment},
    semver::Version,
    stacks,
};

/// The plan for a change of `kind` to `target` on `d`; `uses_blue_green` says whether a version
/// of the capability is deployed blue-green. A first deploy builds blue; an upgrade, rollback or
/// switch builds the colour that is not serving, when either the running or the target version
/// is blue-green. Anything else (a delete, a drift check, a plain template): no plan.
pub fn plan(
    kind: OperationKind,
    d: &Deployment,
    target: Option<&Version>,
    uses_blue_green: impl Fn(&Version) -> bool,
) -> Option<BlueGreen> {
    let target = target?;
    let fresh = |to, from, old_stack| BlueGreen {
        to,
        from,
        old_stack,
        healthy: false,
        switched_at: None,
        old_deleted: false,
        abandoned: false,
    };
    match kind {
        OperationKind::Deploy if uses_blue_green(target) => Some(fresh(Color::Blue, None, None)),
        OperationKind::Upgrade | OperationKind::Rollback | OperationKind::Switch
            if uses_blue_green(target) || uses_blue_green(&d.version) =>
        {
            let from = d.active_color.unwrap_or(Color::Blue);
            // The old colour's stack is deleted after the bake time: only if one was built.
            let old_stack = d.stack_id.as_ref().map(|_| d.stack_name.clone());
            Some(fresh(from.other(), Some(from), old_stack))
        }
        _ => None,
    }
}

/// The stack a change works on: the other colour's for a blue-green change from a serving
/// colour, else the deployment's own (a first deploy's name already says blue).
pub fn stack_name(d: &Deployment, plan: Option<&BlueGreen>) -> String {
    match plan {
        Some(bg) if bg.from.is_some() => stacks::colour_stack_name(&d.stack_name, bg.to),
        _ => d.stack_name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::{
        ids::Id,
        lifecycle::{DeploymentStatus, Drift, Health},
        model::EnvironmentName,
        time::Timestamp,
    };

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    fn deployment(color: Option<Color>, built: bool) -> Deployment {
        Deployment {
            id: Id::from_parts(1, 1),
            customer_id: Id::from_parts(1, 2),
            environment_id: Id::from_parts(1, 3),
            environment: EnvironmentName::Prod,
            capability: "crm".into(),
            version: v("1.0.0"),
            parameters: BTreeMap::new(),
            stack_name: stacks::stack_name("crm", "acme", EnvironmentName::Prod, color),
            stack_id: built.then(|| "arn:stack".to_string()),
            status: DeploymentStatus::Active,
            health: Health::Healthy,
            drift: Drift::NotChecked,
            outputs: BTreeMap::new(),
            active_color: color,
            last_operation_id: None,
            last_synced_at: None,
            previous_version: None,
            previous_parameters: BTreeMap::new(),
            created_at: Timestamp::from_millis(1),
            updated_at: Timestamp::from_millis(1),
            rev: 1,
        }
    }

    #[test]
    fn a_first_deploy_builds_blue_in_the_deployments_own_stack() {
        let d = deployment(Some(Color::Blue), false);
        let p = plan(OperationKind::Deploy, &d, Some(&v("1.0.0")), |_| true).unwrap();
        assert_eq!((p.to, p.from, p.old_stack.clone()), (Color::Blue, None, None));
        assert_eq!(stack_name(&d, Some(&p)), d.stack_name);
    }

    #[test]
    fn an_upgrade_builds_the_other_colour_and_names_the_old_stack() {
        let d = deployment(Some(Color::Green), true);
        let p = plan(OperationKind::Upgrade, &d, Some(&v("1.1.0")), |_| true).unwrap();
        assert_eq!((p.to, p.from), (Color::Blue, Some(Color::Green)));
        assert_eq!(p.old_stack.as_deref(), Some(d.stack_name.as_str()));
        assert_eq!(
            stack_name(&d, Some(&p)),
            stacks::stack_name("crm", "acme", EnvironmentName::Prod, Some(Color::Blue))
        );
        assert!(!p.healthy && p.switched_at.is_none() && !p.old_deleted && !p.abandoned);
    }

    #[test]
    fn moving_into_or_out_of_blue_green_plans_a_colour_too() {
        let plain = deployment(None, true);
        let into =
            plan(OperationKind::Upgrade, &plain, Some(&v("2.0.0")), |v| v.to_string() == "2.0.0").unwrap();
        assert_eq!((into.to, into.from), (Color::Green, Some(Color::Blue)), "no colour yet counts as blue");
        assert_eq!(
            stack_name(&plain, Some(&into)),
            stacks::stack_name("crm", "acme", EnvironmentName::Prod, Some(Color::Green))
        );
        let out = plan(OperationKind::Rollback, &plain, Some(&v("0.9.0")), |v| v.to_string() == "1.0.0");
        assert!(out.is_some(), "the running version is blue-green");
    }

    #[test]
    fn plain_changes_and_deletes_have_no_plan() {
        let d = deployment(None, true);
        assert_eq!(plan(OperationKind::Upgrade, &d, Some(&v("1.1.0")), |_| false), None);
        assert_eq!(plan(OperationKind::Delete, &d, None, |_| true), None);
        assert_eq!(plan(OperationKind::DriftCheck, &d, Some(&v("1.0.0")), |_| true), None);
        assert_eq!(stack_name(&d, None), d.stack_name);
    }
}
