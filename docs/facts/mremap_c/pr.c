#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
int main(){errno=0;int r=prctl(67,1,0,0,0);printf("SET -> %d %s\n",r,strerror(errno));r=prctl(68,0,0,0,0);printf("GET -> %d\n",r);
errno=0;r=prctl(68,0,1,0,0);printf("GET arg3 -> %d %s\n",r,strerror(errno));errno=0;r=prctl(67,0,0,0,1);printf("SET arg5 -> %d %s\n",r,strerror(errno));return 0;}
