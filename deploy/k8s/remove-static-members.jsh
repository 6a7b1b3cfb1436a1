// Removes static members from a consumer group now, by their
// group.instance.id, so that the group rebalances at once and the remaining
// members take over their partitions, instead of after the session timeout.
//
// A static member (the join role's StatefulSet pods) does not leave its
// group when it stops: that is what lets a restarted replica get its own
// partitions back. After a scale-down, then, the stopped replicas' partitions
// stay unowned for kafka.session_timeout_ms. Kafka's Admin API removes such
// members (KIP-345, Admin.removeMembersFromConsumerGroup: a LeaveGroup on
// their behalf); Kafka 4.1's command-line tools have no command for it, so
// this runs the call in jshell, which comes with every JDK:
//
//   BOOTSTRAP_SERVERS=ics-kafka-bootstrap.kafka.svc:9093 \
//   GROUP=icsflow-join MEMBERS=icsflow-join-2 \
//   CLIENT_PROPERTIES=join-client.properties \
//   jshell --class-path '/opt/kafka/libs/*' deploy/k8s/remove-static-members.jsh
//
// BOOTSTRAP_SERVERS: the brokers. GROUP: the consumer group (join.group_id).
// MEMBERS: comma-separated group.instance.ids, that is, the stopped pods'
// names. CLIENT_PROPERTIES (optional): a Kafka client properties file for
// TLS and SASL, as for Kafka's own tools' --command-config; the join role's
// own user may do this (LeaveGroup needs Read on the group, which it has).
// The class path is Kafka 4.1's libs/ (kafka-clients and slf4j-api are
// enough). Exits 0 once every member is removed; 1, with the broker's
// reason, if any is not (UNKNOWN_MEMBER_ID: that member had already left).
//
// Only ever name members that have stopped: a running member removed from
// its group loses its partitions, rejoins and replays them.

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.MemberToRemove;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions;

int status = 1;
String setting(String name) {
    String value = System.getenv(name);
    if (value == null || value.isBlank()) {
        throw new IllegalArgumentException(name + " is not set; see the comment at the top of remove-static-members.jsh");
    }
    return value.trim();
}
void removeStaticMembers() throws Exception {
    var group = setting("GROUP");
    var members = Arrays.stream(setting("MEMBERS").split(",")).map(String::trim).filter(member -> !member.isEmpty()).toList();
    var properties = new Properties();
    var file = System.getenv("CLIENT_PROPERTIES");
    if (file != null && !file.isBlank()) {
        try (var reader = Files.newBufferedReader(Path.of(file.trim()))) {
            properties.load(reader);
        }
    }
    properties.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, setting("BOOTSTRAP_SERVERS"));
    properties.putIfAbsent(AdminClientConfig.CLIENT_ID_CONFIG, "icsflow-remove-static-members");
    try (var admin = Admin.create(properties)) {
        var options = new RemoveMembersFromConsumerGroupOptions(members.stream().map(MemberToRemove::new).toList());
        var result = admin.removeMembersFromConsumerGroup(group, options);
        var failed = 0;
        for (var member : members) {
            try {
                result.memberResult(new MemberToRemove(member)).get();
                System.out.println("removed " + member + " from group " + group);
            } catch (java.util.concurrent.ExecutionException error) {
                failed++;
                System.err.println("not removed: " + member + " from group " + group + ": " + error.getCause());
            }
        }
        if (failed == 0) {
            status = 0;
        }
    }
}
try {
    removeStaticMembers();
} catch (Exception error) {
    System.err.println("remove-static-members: " + error);
}
/exit status
