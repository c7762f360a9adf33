//! SPEC 1 and 3 basics: run tasks in order, echo, exit statuses.
use crate::common;
use common::Test;

#[test]
fn runs_tasks_in_order_with_their_own_arguments() {
    Test::with(
        r#"
        [tasks.mytime]
        run = "echo time"
        [tasks.build]
        run = "echo build {% if release %}--release{% endif %}"
        [[tasks.build.args]]
        name = "release"
        type = "bool"
        [tasks.test]
        run = "echo test"
        "#,
    )
    .args(&["mytime", "build", "--release", "test"])
    .expect(
        "time\nbuild --release\ntest\n",
        "[mytime] $ echo time\n[build] $ echo build --release\n[test] $ echo test\n",
        0,
    );
}
